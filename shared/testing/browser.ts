// The real browser of the playback tests: Debian's chromium, driven by playwright-core, headless,
// autoplaying muted media, with nothing of its own on the network.
import type { Browser } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/** Launch chromium; `extraArgs` add to the flags every playback test uses. Close it in a teardown. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  // Imported here so that tests without a browser do not load playwright.
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--mute-audio',
      ...extraArgs,
    ],
  })
}
