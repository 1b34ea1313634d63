#!/bin/sh
# Compiles and lints the Bicep (and the path-2 parameter file) wherever a Bicep CLI exists; the
# static tests in test/unit/infra check what they can without one.
set -e
export AZURE_ENV_NAME="${AZURE_ENV_NAME:-infra-build}" AZURE_LOCATION="${AZURE_LOCATION:-westeurope}"
if command -v bicep >/dev/null 2>&1; then
  bicep build infra/main.bicep --stdout >/dev/null
  bicep build-params infra/main.bicepparam --stdout >/dev/null
  bicep lint infra/main.bicep
elif command -v az >/dev/null 2>&1; then
  az bicep build --file infra/main.bicep --stdout >/dev/null
  az bicep build-params --file infra/main.bicepparam --stdout >/dev/null
  az bicep lint --file infra/main.bicep
else
  echo 'infra:build: no Bicep CLI found (bicep or az bicep); skipped'
fi
