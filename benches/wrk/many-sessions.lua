-- GET /v1/session, cycling through the cookies in the file given as the first
-- script argument, each wrk thread taking every Nth (N = second argument).
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  cookies = {}
  for line in io.lines(args[1]) do
    cookies[#cookies + 1] = line
  end
  stride = tonumber(args[2])
  index = id + 1
end

function request()
  local cookie = cookies[index]
  index = index + stride
  if index > #cookies then
    index = id + 1
  end
  return wrk.format("GET", "/v1/session", { ["Cookie"] = cookie })
end
