-- post_json.lua - POST a small JSON body (the FastAPI /submit benchmark).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"item":"server","qty":3,"tags":["a","b"]}'
