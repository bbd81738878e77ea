// What a player's segment and playlist requests carry: hls.js in Chromium fetching from a CDN host
// for a page on another origin (a cross-origin GET, no cookies). Every load sends these by default,
// so a server that pays per request header pays it here as it would at a PoP; `--headers bare`
// sends only Host (the old, flattering load).
export const PLAYER_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  accept: '*/*',
  'accept-encoding': 'gzip, deflate, br, zstd',
  'accept-language': 'en-US,en;q=0.9',
  origin: 'https://www.example.com',
  referer: 'https://www.example.com/watch/abc123',
  'sec-ch-ua': '"Chromium";v="131", "Not_A Brand";v="24"',
  'sec-ch-ua-mobile': '?0',
  'sec-ch-ua-platform': '"Linux"',
  'sec-fetch-dest': 'empty',
  'sec-fetch-mode': 'cors',
  'sec-fetch-site': 'cross-site',
})

export type RequestHeaderSet = 'player' | 'bare'
export const REQUEST_HEADER_SETS: readonly RequestHeaderSet[] = ['player', 'bare']

/** `name: value` lines, as every load generator puts them on the wire or its command line. */
export function headerLines(headers: Readonly<Record<string, string>>): string[] {
  return Object.entries(headers).map(([name, value]) => `${name}: ${value}`)
}

export function requestHeaders(set: RequestHeaderSet): Readonly<Record<string, string>> {
  return set === 'player' ? PLAYER_HEADERS : {}
}
