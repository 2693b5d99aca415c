// loggers.mjs: writes a few records with each real logger to its own file,
// as an application would: pino to a file destination, bunyan to a file
// stream, winston through its File transport with the json format.
// Usage: node loggers.mjs DIR
import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import bunyan from "bunyan";
import winston from "winston";

const dir = process.argv[2];
const trace = "4bf92f3577b34da6a3ce929d0e0e4736";

const dest = pino.destination({ dest: path.join(dir, "pino.log"), sync: true });
const p = pino({ level: "debug" }, dest);
p.info({ n: 1, user: { id: 7, roles: ["a", "b"] } }, "pino info");
p.warn({ n: 2, trace_id: trace }, "pino warn");
p.error({ n: 3 }, "pino error");
p.debug({ n: 4 }, "pino debug");
dest.flushSync();

const b = bunyan.createLogger({ name: "app", streams: [{ level: "debug", path: path.join(dir, "bunyan.log") }] });
b.info({ n: 1, user: { id: 7 } }, "bunyan info");
b.warn({ n: 2 }, "bunyan warn");
b.error({ n: 3 }, "bunyan error");
b.fatal({ n: 4 }, "bunyan fatal");

const w = winston.createLogger({
  level: "debug",
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  transports: [new winston.transports.File({ filename: path.join(dir, "winston.log") })],
});
w.info("winston info", { n: 1, user: { id: 7 } });
w.warn("winston warn", { n: 2 });
w.error("winston error", { n: 3 });
w.debug("winston debug", { n: 4 });
w.on("finish", () => {
  // bunyan's file stream flushes on its own; give it the same chance
  setTimeout(() => {
    for (const f of ["pino.log", "bunyan.log", "winston.log"])
      process.stdout.write(JSON.stringify({ file: f, bytes: fs.statSync(path.join(dir, f)).size }) + "\n");
  }, 200);
});
w.end();
