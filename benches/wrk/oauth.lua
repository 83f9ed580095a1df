-- POST a form to an OAuth endpoint with HTTP Basic client authentication.
-- Script arguments: the Authorization header value, then the form body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function init(args)
  wrk.headers["Authorization"] = args[1]
  wrk.body = args[2]
end
