-- bench/healthz.lua — wrk script for the plain GET phases (e.g. /healthz):
-- no per-request Lua, only done() printing one machine-readable line
--   BENCH requests=.. elapsed_us=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. mean_us=.. errors...
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d elapsed_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f " ..
    "connect_err=%d read_err=%d write_err=%d timeouts=%d status_err=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status))
end
