-- POST /v1/login with the benchmark account's credentials, as JSON.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"bench password 1234"}'
