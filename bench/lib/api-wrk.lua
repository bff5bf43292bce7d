-- bench/lib/api-wrk.lua — wrk script for bench/api: sends the API token from the environment
-- (MB_BENCH_TOKEN, so it is not on wrk's command line) and, at the end, prints one line
-- `MBWRK {json}` with the counts and the latency percentiles (microseconds) for the driver.
local token = os.getenv("MB_BENCH_TOKEN")
if token and #token > 0 then
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'MBWRK {"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
