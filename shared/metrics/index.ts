// Prometheus metrics (prom-client). Each tier declares its metrics in one table and gets typed
// handles back; counters are the observability contract (Varnish/ATS style), and tests assert them.
import client from 'prom-client'
import type { HistogramSnapshot } from './histogram.js'

export { Histogram, HistogramsBy, LATENCY_BUCKETS_S, type HistogramSnapshot } from './histogram.js'

type Labels = Record<string, string | number>

/** Label values → value, for counters and gauges kept outside prom-client and read at scrape time. */
export type CounterSamples = number | Iterable<readonly [Labels, number]>

/** Label values → histogram, for histograms kept outside prom-client (see histogram.ts). */
export type HistogramSamples = Iterable<readonly [Labels, { snapshot(): HistogramSnapshot }]>

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
  | { type: 'gauge'; help: string; labels?: readonly string[]; collect?: () => CounterSamples }
  | { type: 'histogram'; help: string; labels?: readonly string[]; buckets: readonly number[] }
  | {
      type: 'histogram'
      help: string
      /** Hot-path histograms: the owner observes into Histogram objects; this reads them at scrape. */
      collect: () => HistogramSamples
      /** Documentation only: the label names `collect` yields. */
      labels?: readonly string[]
    }

type Handle<S extends MetricSpec> = S extends { type: 'counter' }
  ? client.Counter
  : S extends { type: 'gauge' }
    ? client.Gauge
    : S extends { collect: () => HistogramSamples }
      ? null
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
    } else if (spec.type === 'histogram') {
      if ('collect' in spec) {
        registerCollectedHistogram(registry, common.name, spec.help, spec.collect)
        m[name] = null
      } else m[name] = new client.Histogram({ ...common, buckets: [...spec.buckets] })
    } else {
      const collect = spec.collect
      m[name] = new client.Gauge(
        collect
          ? {
              ...common,
              collect() {
                this.reset()
                const samples = collect()
                if (typeof samples === 'number') this.set(samples)
                else for (const [labels, value] of samples) this.set(labels, value)
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

/**
 * A histogram family read from its owner's Histogram objects at scrape time, in the shape
 * prom-client's registry formats (name_bucket{…,le}, name_sum, name_count).
 */
function registerCollectedHistogram(
  registry: client.Registry,
  name: string,
  help: string,
  collect: () => HistogramSamples,
): void {
  const get = () => {
    const values: { metricName: string; labels: Labels; value: number }[] = []
    for (const [labels, h] of collect()) {
      const { buckets, sum, count } = h.snapshot()
      for (const [le, n] of buckets)
        values.push({
          metricName: `${name}_bucket`,
          labels: { ...labels, le: le === Infinity ? '+Inf' : le },
          value: n,
        })
      values.push({ metricName: `${name}_sum`, labels, value: sum })
      values.push({ metricName: `${name}_count`, labels, value: count })
    }
    return { name, help, type: 'histogram', aggregator: 'sum', values }
  }
  // The registry needs only the name and get() of a metric (Registry.getMetricsAsString).
  registry.registerMetric({ name, help, type: 'histogram', get } as unknown as client.Metric)
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
