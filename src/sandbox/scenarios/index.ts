// Traffic scenarios: deterministic generators, the transports that carry their items to
// Middlemart, and the runner that paces them and summarises the outcome.
import { runTraffic } from './runner.js';
import type { RunOptions, RunSummary } from './runner.js';
import { scenarioByName, SCENARIO_NAMES } from './scenarios.js';
import type { ResolvedScenarioOptions, ScenarioOptions } from './scenarios.js';

export * from './canonical.js';
export * from './runner.js';
export * from './scenarios.js';
export * from './traffic.js';
export * from './transport.js';

export interface ScenarioRun {
  scenario: string;
  options: ResolvedScenarioOptions;
  summary: RunSummary;
}

/**
 * Generates a scenario's traffic and runs it. The run is bounded in time by twice the traffic's
 * expected sending time (requests ÷ rate) plus 30 s, unless `maxDurationMs` is given.
 */
export async function runScenario(
  name: string,
  scenarioOptions: ScenarioOptions,
  run: Omit<RunOptions, 'items' | 'rate' | 'maxDurationMs'> & {
    maxDurationMs?: number;
    rate?: number;
  },
): Promise<ScenarioRun> {
  const scenario = scenarioByName(name);
  if (!scenario) {
    throw new Error(`unknown scenario '${name}' (known: ${SCENARIO_NAMES.join(', ')})`);
  }
  const options = scenario.resolve(scenarioOptions);
  const items = scenario.generate(scenarioOptions);
  const rate = run.rate ?? options.rate;
  const requests = items.reduce((n, item) => n + run.transport.plan(item).length, 0);
  const expectedMs = rate > 0 ? (requests / rate) * 1000 : 0;
  const summary = await runTraffic({
    ...run,
    items,
    rate,
    maxDurationMs: run.maxDurationMs ?? Math.ceil(expectedMs * 2 + 30_000),
  });
  return { scenario: name, options, summary };
}
