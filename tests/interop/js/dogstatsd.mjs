// dogstatsd.mjs: hot-shots (DogStatsD mode) sending every metric type, an
// event and a service check, with tags and sample rates, to the otelite
// `dogstatsd` receiver given in argv[2] ({port} for UDP, or {path} for a
// Unix datagram socket through hot-shots' native unix-dgram add-on); used
// by tests/interop/test_dogstatsd_clients.py. Prints a JSON report last.
import StatsD from 'hot-shots';

const o = JSON.parse(process.argv[2] || '{}');
// hot-shots drops sampled calls at random; with this every call is sent,
// so the receiver's 1/rate scaling can be checked exactly.
Math.random = () => 0;
const errors = [];
const c = new StatsD({
  ...(o.path ? { protocol: 'uds', path: o.path }
            : { host: '127.0.0.1', port: o.port, protocol: 'udp' }),
  prefix: 'hs.',
  globalTags: { env: 'interop' },
  maxBufferSize: o.buffer || 0,
  errorHandler: (e) => errors.push(String(e)),
});
const done = [];
const cb = (e) => { if (e) errors.push(String(e)); done.push(1); };
c.increment('requests', 1, ['route:/a'], cb);
c.increment('requests', 2, 0.5, ['route:/a'], cb);
c.decrement('requests', 1, ['route:/b'], cb);
c.gauge('temperature', 21.5, ['room:lab'], cb);
c.set('visitors', 'alice', cb);
c.set('visitors', 'bob', cb);
c.unique('visitors', 'alice', cb);
c.timing('db.query', 10, ['db:main'], cb);
c.timing('db.query', 20, ['db:main'], cb);
c.timing('db.query', 30, 0.5, ['db:main'], cb);
c.histogram('body.size', 100, ['kind:json'], cb);
c.histogram('body.size', 300, ['kind:json'], cb);
c.distribution('payload', 7, ['host:web-9'], cb);
c.distribution('payload', 9, ['host:web-9'], cb);
c.event('deploy finished', 'build 42\nall green',
  { alert_type: 'success', priority: 'low', hostname: 'ci-1', aggregation_key: 'deploy-42',
    source_type_name: 'jenkins' }, ['team:core'], cb);
c.check('api.up', c.CHECKS.WARNING, { hostname: 'api-1', message: 'slow responses' },
  ['role:api'], cb);
c.close((e) => {
  if (e) errors.push(String(e));
  console.log(JSON.stringify({ ok: errors.length === 0, errors, sent: done.length }));
});
