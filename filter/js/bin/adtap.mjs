#!/usr/bin/env node
// The `adtap` command (the package's npm `bin`): see ../cli/main.mjs and `adtap --help`.
import { main } from '../cli/main.mjs';

const io = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  stdin: async () => {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return Buffer.concat(chunks);
  },
};

process.exitCode = await main(process.argv.slice(2), io);
