-- Argument checks every Driftwatch script starts with (loaded in front of each
-- script by shared/redis_scripts.py). A bad call stops before any write with an
-- error naming the script and the argument, never a Lua runtime error.

local SCRIPT = 'script'  -- each script names itself with named()

local function named(name)
  SCRIPT = name
end

local function fail(message)
  error(redis.error_reply(SCRIPT .. ': ' .. message))
end

-- KEYS must hold exactly `n` keys.
local function need_keys(n)
  if #KEYS ~= n then fail('expected ' .. n .. ' keys, got ' .. #KEYS) end
end

-- ARGV must hold at least `n` arguments (exactly, when `exact`).
local function need_args(n, exact)
  if #ARGV < n or (exact and #ARGV ~= n) then
    fail('expected ' .. (exact and '' or 'at least ') .. n .. ' arguments, got ' .. #ARGV)
  end
end

-- ARGV[i] as an integer of at least `min`.
local function int_arg(i, what, min)
  local value = tonumber(ARGV[i])
  if value == nil or value ~= math.floor(value) or value < (min or 0) then
    fail(what .. ' (ARGV[' .. i .. ']) must be an integer >= ' .. (min or 0) .. ', got ' .. tostring(ARGV[i]))
  end
  return value
end

-- A packed column of `n` values `width` bytes wide.
local function need_width(column, n, width, what)
  if #column ~= n * width then
    fail(what .. ' must be ' .. n .. ' values of ' .. width .. ' bytes (' .. n * width .. ' bytes), got ' .. #column)
  end
end

-- Comma-separated integers, exactly `n` of them.
local function int_list(text, n, what)
  local values = {}
  for s in string.gmatch(text, '[^,]+') do
    local value = tonumber(s)
    if value == nil then fail(what .. ' holds ' .. s .. ', not an integer') end
    values[#values + 1] = value
  end
  if #values ~= n then fail(what .. ' must hold ' .. n .. ' integers, got ' .. #values) end
  return values
end
