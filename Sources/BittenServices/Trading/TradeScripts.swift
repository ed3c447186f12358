import BittenCore
import Redis

/// The Lua scripts of the trade path. Each multi-key change is one script, so Redis applies it
/// atomically and a crash leaves either all of it or none. Fire/close records follow the
/// transitions of `FireState` (its table is compiled into the scripts).
enum TradeScripts {
    /// Shared helpers: the transition table, hash reading and event publishing.
    static let prelude = """
        local T = \(FireState.luaTable)
        local function hgetall(key)
          local flat = redis.call('HGETALL', key)
          local map = {}
          for i = 1, #flat, 2 do map[flat[i]] = flat[i + 1] end
          return map
        end
        -- Bounded lists: trimmed back to 1 000 once they pass 1 100, not on every push.
        local function push(list, value)
          if redis.call('LPUSH', list, value) > 1100 then redis.call('LTRIM', list, 0, 999) end
        end
        local function hset(key, map)
          local flat = {}
          for k, v in pairs(map) do flat[#flat + 1] = k; flat[#flat + 1] = v end
          redis.call('HSET', key, unpack(flat))
        end
        local function publish(event, record)
          record['event'] = event
          redis.call('PUBLISH', 'bitten:events', cjson.encode(record))
        end
        """

    /// Stores a new signal (never overwrites one). KEYS: signal hash, recent zset.
    /// ARGV: ttl seconds, received_at, signal_id, then field/value pairs. → 1 stored, 0 exists already
    static let saveSignal = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local fields = {}
        for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], unpack(fields))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
        redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1001)
        return 1
        """)

    /// Size fields per sizing variant (as field/value pairs: lot, risk_percent, risk_amount, tier).
    static let variantFieldCount = 8

    /// Creates a fire: its id (`F-{date}-{seq}`), the `pending` record, its slot and the idempotency
    /// marker, in one step, after the checks that depend on stored state:
    /// the signal is the one the caller read (its `received_at` stamp), the user exists, this user
    /// has not fired this signal, the user's tier and risk override (read here, so never stale)
    /// select one of the sizes the caller computed, and that tier has a free slot.
    /// KEYS: fired marker, slots set, deadlines zset, recent list, user hash, signal hash.
    /// ARGV: date (YYYYMMDD), deadline, signal stamp, variant count, then per variant
    /// (key 'TIER|override', slots, sizing error or '', \(variantFieldCount) size field/value items), then
    /// the record's other field/value pairs.
    /// → {'ok', fire_id, key} | {'duplicate', fire_id} | {'no_slot', used, key} | {'no_user'} |
    ///   {'signal_changed'} | {'resize', TIER, override} | {'sizing', message}
    static let reserveFire = RedisScript(prelude + """

        local stamp = redis.call('HGET', KEYS[6], 'received_at')
        if not stamp then
          if redis.call('EXISTS', KEYS[6]) == 0 then return {'signal_changed'} end
          stamp = ''
        end
        if stamp ~= ARGV[3] then return {'signal_changed'} end
        local u = redis.call('HMGET', KEYS[5], 'uuid', 'tier', 'risk_override')
        if not u[1] or not u[2] then return {'no_user'} end
        local existing = redis.call('GET', KEYS[1])
        if existing then return {'duplicate', existing} end
        local want = string.upper(u[2]) .. '|' .. (u[3] or '')
        local width = 3 + \(variantFieldCount)
        local v
        for i = 0, tonumber(ARGV[4]) - 1 do
          local at = 5 + i * width
          if ARGV[at] == want then v = at; break end
        end
        if not v then return {'resize', string.upper(u[2]), u[3] or ''} end
        if ARGV[v + 2] ~= '' then return {'sizing', ARGV[v + 2]} end
        local used = redis.call('SCARD', KEYS[2])
        if used >= tonumber(ARGV[v + 1]) then return {'no_slot', tostring(used), want} end
        local id = 'F-' .. ARGV[1] .. '-' .. string.format('%06d', redis.call('INCR', 'fire:seq'))
        local key = 'fire:' .. id
        local fields = {}
        for i = v + 3, v + 2 + \(variantFieldCount) do fields[#fields + 1] = ARGV[i] end
        for i = 5 + tonumber(ARGV[4]) * width, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', key, 'state', 'pending', 'holds_slot', '1', 'fire_id', id, unpack(fields))
        redis.call('SET', KEYS[1], id)
        redis.call('SADD', KEYS[2], id)
        redis.call('ZADD', KEYS[3], ARGV[2], key)
        push(KEYS[4], id)
        return {'ok', id, want}
        """)

    /// Moves a fire or close record. KEYS: record, deadlines zset. ARGV: target state, new deadline
    /// (or ''), then field/value pairs. A record that holds a slot gives it back on rejected/timed_out.
    /// → {'ok'|'same'|'invalid'|'missing', previous state, the record after the change (flat HGETALL)}
    static let transition = RedisScript(prelude + """

        local state = redis.call('HGET', KEYS[1], 'state')
        if not state then return {'missing', ''} end
        if state == ARGV[1] then return {'same', state} end
        if not T[state] or not T[state][ARGV[1]] then return {'invalid', state} end
        local fields = {}
        for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], 'state', ARGV[1], unpack(fields))
        local flat = redis.call('HGETALL', KEYS[1])
        local r = {}
        for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
        if (ARGV[1] == 'rejected' or ARGV[1] == 'timed_out') and r['holds_slot'] == '1' then
          redis.call('SREM', 'slots:' .. r['user_uuid'], r['fire_id'])
        end
        if ARGV[2] ~= '' then
          redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1])
        else
          redis.call('ZREM', KEYS[2], KEYS[1])
        end
        publish((r['kind'] or 'fire') .. '.' .. ARGV[1], r)
        return {'ok', state, flat}
        """)

    /// Applies a batch of ledger entries in order, in one script: each `confirmation` (answer to a
    /// fire) once per fire, each `close_confirmation` once per ticket (a failure once per stream
    /// entry). The whole batch is atomic; one entry's error (caught with pcall) does not stop the
    /// others. Statistics hashes are read once and written once per batch, and bounded lists are
    /// pushed once per list, which is what makes a batch cheap; the result per entry is the same as
    /// applying the entries one at a time.
    /// Idempotent by state: a fire already `filled`/`rejected` or a position already `closed` makes the
    /// entry a `duplicate`, so a replay after a crash changes nothing.
    /// ARGV per entry: 'c' or 'x' (confirmation or close), n, then n arguments:
    ///   c: stream id, fire_id, status, ticket, price, lot, message, account, user_uuid, received_at
    ///   x: stream id, ticket, status, close_price, lot, message, account, user_uuid, received_at, day
    /// → one string per entry: ok | duplicate | unknown_fire | unknown_position | wrong_user |
    ///   invalid | rejected | ignored | error:<message>
    static let applyBatch = RedisScript(prelude + """

        local lists, list_order, expires = {}, {}, {}
        local function push_later(list, value)
          if not lists[list] then lists[list] = {}; list_order[#list_order + 1] = list end
          local l = lists[list]
          l[#l + 1] = value
        end
        local fields = {'total', 'wins', 'losses', 'breakeven', 'gross_profit_cents', 'gross_loss_cents',
          'largest_win_cents', 'largest_loss_cents', 'current_streak', 'best_streak', 'worst_streak'}
        local stats_cache, stats_order = {}, {}
        local function stats(key, cents, at)
          local v = stats_cache[key]
          if not v then
            local raw = redis.call('HMGET', key, unpack(fields))
            v = {}
            for i, name in ipairs(fields) do v[name] = tonumber(raw[i] or '0') or 0 end
            stats_cache[key] = v
            stats_order[#stats_order + 1] = key
          end
          v.total = v.total + 1
          if cents > 0 then
            v.wins = v.wins + 1
            v.gross_profit_cents = v.gross_profit_cents + cents
            if cents > v.largest_win_cents then v.largest_win_cents = cents end
            v.current_streak = (v.current_streak > 0) and v.current_streak + 1 or 1
          elseif cents < 0 then
            v.losses = v.losses + 1
            v.gross_loss_cents = v.gross_loss_cents - cents
            if -cents > v.largest_loss_cents then v.largest_loss_cents = -cents end
            v.current_streak = (v.current_streak < 0) and v.current_streak - 1 or -1
          else
            v.breakeven = v.breakeven + 1
            v.current_streak = 0
          end
          if v.current_streak > v.best_streak then v.best_streak = v.current_streak end
          if -v.current_streak > v.worst_streak then v.worst_streak = -v.current_streak end
          v.last_trade_at = at
        end
        local function money(c) return string.format('%.2f', c / 100) end
        local function write_stats(key, v)
          local gp, gl = v.gross_profit_cents, v.gross_loss_cents
          local pf = ''
          if gl > 0 then pf = string.format('%.4f', gp / gl) elseif gp == 0 then pf = '0' end
          redis.call('HSET', key, 'total', v.total, 'wins', v.wins, 'losses', v.losses, 'breakeven', v.breakeven,
            'gross_profit_cents', gp, 'gross_loss_cents', gl, 'largest_win_cents', v.largest_win_cents,
            'largest_loss_cents', v.largest_loss_cents, 'current_streak', v.current_streak,
            'best_streak', v.best_streak, 'worst_streak', v.worst_streak,
            'win_rate', string.format('%.2f', v.wins / v.total * 100), 'gross_profit', money(gp), 'gross_loss', money(gl),
            'net', money(gp - gl), 'profit_factor', pf,
            'average_win', (v.wins > 0) and money(gp / v.wins) or '0.00',
            'average_loss', (v.losses > 0) and money(gl / v.losses) or '0.00',
            'largest_win', money(v.largest_win_cents), 'largest_loss', money(v.largest_loss_cents),
            'last_trade_at', v.last_trade_at)
        end
        local function orphan(stream_id, record)
          if redis.call('SET', 'done:orphan:' .. stream_id, '1', 'NX', 'EX', 2592000) then
            push('orphan_confirmations', cjson.encode(record))
          end
        end

        local fire_fields = {'state', 'kind', 'user_uuid', 'signal_id', 'symbol', 'direction', 'entry', 'sl', 'tp', 'lot',
          'tier', 'tick_size', 'tick_value'}

        local function confirmation(a)
          local stream_id, fire_id, status, ticket, price, lot, message, account, uuid, at =
            a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]
          local key = 'fire:' .. fire_id
          -- Only the fields the position and the event need (a whole record costs Redis more to hand over).
          local raw = redis.call('HMGET', key, unpack(fire_fields))
          local f = {fire_id = fire_id}
          for i, name in ipairs(fire_fields) do
            if raw[i] then f[name] = raw[i] end
          end
          if not f['state'] then
            orphan(stream_id, {stream_id = stream_id, fire_id = fire_id, user_uuid = uuid, ticket = ticket,
              status = status, at = at})
            return 'unknown_fire'
          end
          if f['user_uuid'] ~= uuid then return 'wrong_user' end
          if f['state'] == 'filled' or f['state'] == 'rejected' then return 'duplicate' end
          local target = (status == 'success') and 'filled' or 'rejected'
          if not T[f['state']] or not T[f['state']][target] then return 'invalid' end
          local change = {state = target, confirmed_at = at, ea_message = message, account = account,
            late = (f['state'] == 'timed_out') and '1' or '0'}
          if target == 'filled' then
            change['ticket'], change['fill_price'], change['fill_lot'] = ticket, price, lot
          end
          local was = f['state']
          hset(key, change)
          for k, v in pairs(change) do f[k] = v end
          redis.call('ZREM', 'fires:deadlines', key)
          if target == 'filled' then
            redis.call('HSET', 'position:' .. ticket, 'ticket', ticket, 'fire_id', fire_id, 'signal_id', f['signal_id'],
              'user_uuid', uuid, 'account', account, 'symbol', f['symbol'], 'direction', f['direction'],
              'lot', lot, 'open_price', price, 'sl', f['sl'], 'tp', f['tp'], 'open_time', at,
              'tick_size', f['tick_size'], 'tick_value', f['tick_value'], 'status', 'open')
            redis.call('SADD', 'all_open_positions', ticket)
            redis.call('SADD', 'user_positions:' .. uuid, ticket)
            -- A fire holds its slot while pending or sent; one that timed out gave it back and takes it again.
            if was == 'timed_out' then redis.call('SADD', 'slots:' .. uuid, fire_id) end
          else
            redis.call('SREM', 'slots:' .. uuid, fire_id)
          end
          publish('fire.' .. target, f)
          return 'ok'
        end

        local function close(a)
          local stream_id, ticket, status, close_text = a[1], a[2], a[3], a[4]
          local close_price, message, account, uuid, at_text, day = tonumber(a[4]), a[6], a[7], a[8], a[9], a[10]
          local at = tonumber(at_text)
          if ticket == '0' then return 'ignored' end
          local ckey = 'close:' .. ticket
          if status ~= 'success' then
            if not redis.call('SET', 'done:entry:' .. stream_id, '1', 'NX', 'EX', 2592000) then return 'duplicate' end
            local cstate = redis.call('HGET', ckey, 'state')
            if cstate and T[cstate] and T[cstate]['rejected'] then
              redis.call('HSET', ckey, 'state', 'rejected', 'ea_message', message, 'confirmed_at', at_text)
              redis.call('ZREM', 'fires:deadlines', ckey)
            end
            publish('close.rejected', {ticket = ticket, user_uuid = uuid, ea_message = message})
            return 'rejected'
          end
          local pkey = 'position:' .. ticket
          local p = hgetall(pkey)
          if not p['status'] then
            orphan(stream_id, {stream_id = stream_id, ticket = ticket, user_uuid = uuid, status = status, kind = 'close'})
            return 'unknown_position'
          end
          if p['status'] == 'closed' then return 'duplicate' end
          local dir = (p['direction'] == 'BUY') and 1 or -1
          local open_price, plot = tonumber(p['open_price']), tonumber(p['lot'])
          local raw = (close_price - open_price) * dir / tonumber(p['tick_size']) * tonumber(p['tick_value']) * plot
          local cents = (raw >= 0) and math.floor(raw * 100 + 0.5) or -math.floor(-raw * 100 + 0.5)
          local profit = string.format('%.2f', cents / 100)
          local duration = string.format('%.0f', at - tonumber(p['open_time']))
          local result = (cents > 0) and 'win' or ((cents < 0) and 'loss' or 'breakeven')
          redis.call('HSET', pkey, 'status', 'closed', 'close_price', close_text, 'profit', profit, 'closed_at', at_text,
            'close_time', at_text, 'duration', duration, 'result', result)
          redis.call('SREM', 'all_open_positions', ticket)
          redis.call('SREM', 'user_positions:' .. p['user_uuid'], ticket)
          redis.call('SREM', 'slots:' .. p['user_uuid'], p['fire_id'] or '')
          push_later('closed_positions:' .. p['user_uuid'], ticket)
          local cstate = redis.call('HGET', ckey, 'state')
          if cstate and T[cstate] and T[cstate]['filled'] then
            redis.call('HSET', ckey, 'state', 'filled', 'confirmed_at', at_text, 'close_price', close_text, 'profit', profit)
            redis.call('ZREM', 'fires:deadlines', ckey)
          end
          local function g(k) return p[k] or '' end
          local trade = {ticket = ticket, fire_id = g('fire_id'), signal_id = g('signal_id'), user_uuid = g('user_uuid'),
            account = g('account'), symbol = g('symbol'), direction = g('direction'), lot = g('lot'),
            open_price = g('open_price'), close_price = close_text, sl = g('sl'), tp = g('tp'), open_time = g('open_time'),
            close_time = at_text, duration = duration, profit = profit,
            result = result}
          -- The trade record is the closed position copied (one command instead of writing every field again).
          local tkey = 'trade:' .. ticket
          redis.call('COPY', pkey, tkey, 'REPLACE')
          redis.call('EXPIRE', tkey, 2592000)
          for _, list in ipairs({'trades:' .. p['symbol'], 'trades:account:' .. p['account'], 'trades:day:' .. day,
                                 'trades:recent'}) do
            push_later(list, ticket)
          end
          expires['trades:day:' .. day] = true
          stats('global_trade_stats', cents, at_text)
          stats('symbol_stats:' .. p['symbol'], cents, at_text)
          stats('account_stats_trades:' .. p['account'], cents, at_text)
          stats('user_stats:' .. p['user_uuid'], cents, at_text)
          publish('position.closed', trade)
          return 'ok'
        end

        local results = {}
        local i = 1
        while i <= #ARGV do
          local kind, n = ARGV[i], tonumber(ARGV[i + 1])
          local a = {}
          for j = 1, n do a[j] = ARGV[i + 1 + j] end
          local ok, result = pcall(kind == 'c' and confirmation or close, a)
          if ok then
            results[#results + 1] = result
          else
            local text = (type(result) == 'table' and (result.err or result.message)) or tostring(result)
            results[#results + 1] = 'error:' .. tostring(text)
          end
          i = i + n + 2
        end
        for _, list in ipairs(list_order) do
          if redis.call('LPUSH', list, unpack(lists[list])) > 1100 then redis.call('LTRIM', list, 0, 999) end
        end
        for key in pairs(expires) do redis.call('EXPIRE', key, 2592000) end
        for _, key in ipairs(stats_order) do write_stats(key, stats_cache[key]) end
        return results
        """)

    /// Opens a close request for an open position unless one is under way.
    /// KEYS: close record, position, deadlines. ARGV: deadline, then field/value pairs.
    /// → {'ok'} | {'duplicate', state} | {'not_open', status}
    static let reserveClose = RedisScript(prelude + """

        local status = redis.call('HGET', KEYS[2], 'status')
        if status ~= 'open' then return {'not_open', status or ''} end
        local state = redis.call('HGET', KEYS[1], 'state')
        if state == 'pending' or state == 'sent' then return {'duplicate', state} end
        redis.call('DEL', KEYS[1])
        local fields = {}
        for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], 'state', 'pending', 'kind', 'close', unpack(fields))
        redis.call('ZADD', KEYS[3], ARGV[1], KEYS[1])
        return {'ok', ''}
        """)
}
