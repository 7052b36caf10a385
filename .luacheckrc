-- luacheck settings for the Redis scripts (Lua 5.1 as Redis embeds it).
-- Each script is checked as Redis runs it: shared/lua/checks.lua, its
-- libraries, then the script (tests/unit/test_lua_scripts.py, .ci/run).
std = "lua51"
read_globals = {"redis", "KEYS", "ARGV", "cmsgpack", "cjson", "bit", "struct"}
max_line_length = 120
-- The prelude's helpers are there for every script; not each uses all of them.
ignore = {"211/named", "211/need_keys", "211/need_args", "211/int_arg", "211/need_width", "211/int_list",
          "211/fail", "211/delay_bucket"}
