// Command-line parsing for `adtap`: `--name value`, `--name=value`, boolean flags, `-h`/`--help`,
// `-` as a positional (standard input) and `--` ending the options. A problem is a UsageError
// (exit status 2), naming the option.

/** Bad usage: exit status 2, the message and the command's usage on stderr. */
export class UsageError extends Error {}

/** Invalid input or configuration: exit status 1, the message on stderr. */
export class InputError extends Error {}

/**
 * Parses `argv` against `spec` (`{ name: { value: true } | { flag: true } }`, names without
 * dashes). Returns `{ help, options, positionals }`; a repeated option is a usage error.
 */
export function parseArgs(argv, spec) {
  const options = {};
  const positionals = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-h' || a === '--help') {
      help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const opt = spec[name];
    if (!opt) throw new UsageError(`unknown option --${name}`);
    if (name in options) throw new UsageError(`--${name} is given twice`);
    if (opt.flag) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
      continue;
    }
    let value;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    if (opt.choices && !opt.choices.includes(value)) {
      throw new UsageError(`--${name} must be one of ${opt.choices.join(', ')} (got ${JSON.stringify(value)})`);
    }
    options[name] = value;
  }
  return { help, options, positionals };
}
