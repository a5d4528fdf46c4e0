-- Replays pre-signed webhook requests, each thread its own share, so every request is unique.
-- The file (BENCH_REQUESTS) has one request per line: signature, a tab, the JSON body.
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  local total = tonumber(os.getenv("BENCH_THREADS"))
  requests = {}
  local n = 0
  for line in io.lines(path) do
    if n % total == id then
      local tab = line:find("\t", 1, true)
      local headers = {}
      headers["Content-Type"] = "application/json"
      headers["X-Hub-Signature-256"] = line:sub(1, tab - 1)
      table.insert(requests, wrk.format("POST", "/webhooks/whatsapp", headers, line:sub(tab + 1)))
    end
    n = n + 1
  end
  index = 0
end

function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end
