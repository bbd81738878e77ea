// Prometheus metrics (prom-client). Each tier declares its metrics in one table and gets typed
// handles back; counters are the observability contract (Varnish/ATS style), and tests assert them.
import client from 'prom-client'

/** Label values → count, for counters kept outside prom-client and read at scrape time. */
export type CounterSamples = number | Iterable<readonly [Record<string, string | number>, number]>

export type MetricSpec =
  | {
      type: 'counter'
      help: string
      labels?: readonly string[]
      /**
       * For hot-path counters: the owner keeps plain numbers (prom-client's inc() hashes its label
       * object on every call) and this reads them when the registry is scraped. Totals only grow.
       */
      collect?: () => CounterSamples
    }
  | { type: 'gauge'; help: string; labels?: readonly string[]; collect?: () => number }
  | { type: 'histogram'; help: string; labels?: readonly string[]; buckets: readonly number[] }

type Handle<S extends MetricSpec> = S extends { type: 'counter' }
  ? client.Counter
  : S extends { type: 'gauge' }
    ? client.Gauge
    : client.Histogram

export type MetricHandles<T extends Record<string, MetricSpec>> = { [K in keyof T]: Handle<T[K]> }

export interface Metrics<T extends Record<string, MetricSpec>> {
  readonly m: MetricHandles<T>
  readonly registry: client.Registry
  /** Prometheus text exposition. */
  text(): Promise<string>
  readonly contentType: string
}

export function createMetrics<T extends Record<string, MetricSpec>>(prefix: string, table: T): Metrics<T> {
  const registry = new client.Registry()
  client.collectDefaultMetrics({ register: registry, prefix: `${prefix}_` })
  const m = {} as Record<string, unknown>
  for (const [name, spec] of Object.entries(table)) {
    const common = { name: `${prefix}_${name}`, help: spec.help, labelNames: spec.labels ?? [], registers: [registry] }
    if (spec.type === 'counter') {
      const collect = spec.collect
      m[name] = new client.Counter(
        collect
          ? {
              ...common,
              collect() {
                this.reset()
                const samples = collect()
                if (typeof samples === 'number') this.inc(samples)
                else for (const [labels, value] of samples) this.inc(labels, value)
              },
            }
          : common,
      )
    } else if (spec.type === 'histogram') m[name] = new client.Histogram({ ...common, buckets: [...spec.buckets] })
    else {
      const collect = spec.collect
      m[name] = new client.Gauge(
        collect
          ? {
              ...common,
              collect() {
                this.set(collect())
              },
            }
          : common,
      )
    }
  }
  return {
    m: m as MetricHandles<T>,
    registry,
    text: () => registry.metrics(),
    contentType: registry.contentType,
  }
}

/** Parse Prometheus text into name{labels} → value, for tests and the CLI. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}
