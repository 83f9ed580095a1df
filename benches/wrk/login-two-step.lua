-- POST /v1/login for the benchmark account that has an authenticator app: each
-- answer is 401 second_factor_required (the password step: one Argon2id
-- verification, then the sign-in's ceremony written to the store).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench2","password":"bench password 1234"}'
