import { ADMIN_ROLE, identifyCaller } from '../shared/http/caller';
import { json } from '../shared/http/responses';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/** `GET /api/health`: 200 when the broker works, 503 when not; admins also see each check. */
const handler: Handler<'config' | 'healthService' | 'secrets'> = async (broker, request) => {
  const report = await broker.healthService.report();
  const status = report.ok ? 200 : 503;
  // The public learns only whether the broker works; which store or credential fails is for admins.
  if (!identifyCaller(request, broker.config).roles.includes(ADMIN_ROLE)) {
    return json(status, { status: report.ok ? 'ok' : 'failing' });
  }
  return json(status, {
    status: report.ok ? 'ok' : 'unhealthy',
    checks: report.checks,
    secretStore: broker.secrets.kind,
    sandbox: broker.config.sandbox,
    ...(report.configurationProblem ? { configurationProblem: report.configurationProblem } : {}),
  });
};

export const health: HttpFunctionDefinition = {
  name: 'health',
  route: 'health',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
