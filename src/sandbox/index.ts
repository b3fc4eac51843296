// The sandbox: a simulated retail estate (one Fastify server per system on 127.0.0.1, each
// speaking its product's own protocol, with fault injection) and traffic scenarios to drive it.
export * from './kit.js';
export {
  startEstate,
  renderEstateConfig,
  generateSandboxEnv,
  ESTATE_LAYOUT,
  EstateStartError,
} from './estate.js';
export type {
  Estate,
  EstateLayoutEntry,
  EstateOptions,
  EstateSystem,
  EstateSystemId,
  RenderEstateConfigOptions,
} from './estate.js';
export { createCloudErp } from './cloud-erp/index.js';
export { createLegacyErp } from './legacy-erp/index.js';
export { createCommerce } from './commerce/index.js';
export type { Commerce, CommerceOptions } from './commerce/index.js';
export { createPos } from './pos/index.js';
export type { Pos, PosOptions } from './pos/index.js';
export { createCrm } from './crm/index.js';
export { createLoyalty } from './loyalty/index.js';
export { createWms } from './wms/index.js';
export { createTaxEngine } from './tax/index.js';
export { createNotifications } from './notifications/index.js';
export {
  SCENARIOS,
  SCENARIO_NAMES,
  scenarioByName,
  runScenario,
  runTraffic,
  eventsTransport,
  nativeTransport,
} from './scenarios/index.js';
export type {
  Scenario,
  ScenarioOptions,
  RunOptions,
  RunSummary,
  TrafficItem,
  Transport,
} from './scenarios/index.js';
