-- get.lua - plain GET of the URL given to wrk (nginx static files).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
