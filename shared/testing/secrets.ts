// Secrets for tests that load the example configs in config/: those ship placeholders a node
// refuses (a secret is at least 32 bytes and no placeholder, shared/config), so a test supplies
// real ones the way an operator would, through the environment.

/** Environment that replaces every placeholder secret of the example configs (any tier). */
export const EXAMPLE_SECRETS_ENV: Readonly<NodeJS.ProcessEnv> = Object.freeze({
  VCDN_TIER_SECRET: 'example-tier-secret-for-tests-0123456789abcdef',
  VCDN_SIGNING_KEYS: JSON.stringify({ k1: 'example-signing-key-for-tests-0123456789abcdef' }),
  VCDN_JWT_SECRET: 'example-jwt-secret-for-tests-0123456789abcdef',
  VCDN_TOKEN: 'example.worker-token.for-tests-0123456789abcdef',
})
