// Minimal roff (man(7)) writing: escaping and the few macros our pages use. Pure.

/** Escapes text for roff: backslashes, hyphens (so they render as ASCII minus), and a
 * leading dot or quote that would otherwise start a request. */
export function escapeRoff(text: string): string {
  const escaped = text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  return escaped.replace(/^([.'])/gm, '\\&$1');
}

/** `--socket <path>` → `\fB\-\-socket\fR \fIpath\fR`: flags bold, placeholders italic, brackets kept. */
export function formatFlags(flags: string): string {
  return flags
    .split(/(\s+|,\s*)/)
    .map((part) => {
      const m = /^(\[*)(.*?)(\]*)$/.exec(part) as RegExpExecArray;
      const [, open = '', core = '', close = ''] = m;
      let shown: string;
      if (core.startsWith('<') && core.endsWith('>')) shown = `\\fI${escapeRoff(core.slice(1, -1))}\\fR`;
      else if (core.startsWith('-')) shown = `\\fB${escapeRoff(core)}\\fR`;
      else if (open !== '' && core !== '') shown = `\\fI${escapeRoff(core)}\\fR`;
      else shown = escapeRoff(core);
      return `${open}${shown}${close}`;
    })
    .join('');
}

export interface ManOption {
  flags: string;
  description: string;
  defaultValue?: unknown;
}

/** One `.TP` entry per option, with its default when it has a meaningful one. */
export function optionList(options: readonly ManOption[]): string {
  return options
    .map((o) => {
      const shown = o.defaultValue === undefined || o.defaultValue === false || (Array.isArray(o.defaultValue) && o.defaultValue.length === 0) ? '' : ` (default: ${String(o.defaultValue)})`;
      return `.TP\n${formatFlags(o.flags)}\n${escapeRoff(o.description + shown)}\n`;
    })
    .join('');
}

/** Plain text paragraphs (blank-line separated, indentation kept as literal blocks). */
export function paragraphs(text: string): string {
  return text
    .trim()
    .split(/\n\s*\n/)
    .map((block) => (/^\s{2,}/m.test(block) ? `.PP\n.nf\n${escapeRoff(block)}\n.fi\n` : `.PP\n${escapeRoff(block.replace(/\s*\n\s*/g, ' '))}\n`))
    .join('');
}
