// Boundaries (docs/style.md "Layout"): tiers never import each other, shared/ imports no tier, no
// deep imports past a module's index.ts, no cycles. cli/ may import the tiers' main.ts only.
const tiers = ['origin', 'shield', 'edge', 'transcoder']
module.exports = {
  forbidden: [
    ...tiers.map((tier) => ({
      name: `${tier}-imports-no-other-tier`,
      severity: 'error',
      from: { path: `^${tier}/` },
      to: { path: `^(${tiers.filter((t) => t !== tier).join('|')})/` },
    })),
    {
      name: 'shared-imports-no-tier',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: `^(${tiers.join('|')}|cli|bench)/` },
    },
    {
      name: 'no-deep-imports-into-shared-modules',
      comment: 'a tier imports a shared module only through its index.ts',
      severity: 'error',
      from: { path: '^(origin|shield|edge|transcoder|cli|bench)/' },
      // tests may run a shared module's contract suite against their own implementation
      to: { path: '^shared/[^/]+/', pathNot: ['^shared/[^/]+/index\\.ts$', '^shared/[^/]+/test/contract\\.ts$'] },
    },
    {
      name: 'no-deep-imports-between-shared-modules',
      comment:
        'one shared module imports another only through its index.ts (types.ts of http is allowed; tests may run a module contract table)',
      severity: 'error',
      from: { path: '^shared/([^/]+)/' },
      to: {
        path: '^shared/[^/]+/',
        pathNot: [
          '^shared/$1/',
          '^shared/[^/]+/index\\.ts$',
          '^shared/http/types\\.ts$',
          '^shared/[^/]+/test/contract\\.ts$',
        ],
      },
    },
    {
      name: 'cli-imports-only-tier-mains',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: `^(${tiers.join('|')})/`, pathNot: `^(${tiers.join('|')})/src/main\\.ts$` },
    },
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '(^dist/|node_modules)' },
  },
}
