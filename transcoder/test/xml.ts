// A minimal well-formedness check (one root, balanced tags, quoted attributes): enough to catch
// a broken MPD without an XML parser dependency.
export function checkWellFormedXml(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '')
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g
  const stack: string[] = []
  let roots = 0
  let last = 0
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const between = body.slice(last, m.index)
    if (/[<>]/.test(between)) throw new Error(`stray markup before offset ${m.index}: ${between.slice(0, 40)}`)
    last = m.index + m[0].length
    const [, close, name, , selfClose] = m
    if (close) {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}> at ${m.index}`)
    } else {
      if (stack.length === 0) roots++
      if (!selfClose) stack.push(name as string)
    }
  }
  if (/[<>]/.test(body.slice(last))) throw new Error('stray markup at the end')
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`)
  if (roots !== 1) throw new Error(`${roots} root elements`)
}
