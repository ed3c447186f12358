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
    /// entry), each inferred close (the market crossed a stop loss or take profit) once per position.
    /// The whole batch is atomic; one entry's error (caught with pcall) does not stop the others.
    /// Statistics hashes are read once and written once per batch, and bounded lists are pushed once
    /// per list, which is what makes a batch cheap; the result per entry is the same as applying the
    /// entries one at a time. Idempotent by state: a fire already `filled`/`rejected` or a position
    /// already `closed` makes the entry a `duplicate`, so a replay after a crash changes nothing.
    ///
    /// The EA v2.05 never reports a close price (0), answers `close_all` once with ticket 0, and never
    /// reports a stop-loss or take-profit hit. So a close is valued at the market quotes the entry
    /// carries (this EA's own first, else any EA's: `close_price_source` `market`), a `close_all` with
    /// ticket 0 closes every open position of that account, a `Position not found` answer closes the
    /// position at the market (`closed_at_broker`), and an inferred close is valued at its level
    /// (`inferred`). Where one position closed since the last balance the account reported
    /// (`account_balance:{account}`), the balance difference is the profit (`profit_source` `balance`,
    /// else `price`); statistics use the same figure. At a fill, a stop or target on the wrong side of
    /// the fill price was dropped by the EA: it is recorded as dropped and nothing is inferred from it.
    /// ARGV per entry: kind, n, then n arguments:
    ///   c: stream id, fire_id, status, ticket, price, lot, message, account, user_uuid, received_at, balance
    ///   x: stream id, ticket, status, close_price, lot, message, account, user_uuid, received_at, day,
    ///      command_type, balance, quotes (`SYMBOL:bid:ask:source;…`)
    ///   i: stream id, ticket, reason (stop_loss | take_profit), price, received_at, day
    /// → one string per entry: ok | ok:sl_dropped | ok:tp_dropped | ok:sl_tp_dropped | ok:N (positions
    ///   closed by a close_all) | duplicate | unknown_fire | unknown_position | wrong_user | invalid |
    ///   rejected | ignored | error:<message>
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
          'tier', 'tick_size', 'tick_value', 'broker_symbol'}

        -- The balance each account last reported on the ledger, and how many positions closed since
        -- (a close's profit is the balance difference only when exactly one did).
        -- Read once per account per batch, written once at the end (like the statistics).
        local anchors, anchor_order = {}, {}
        local function anchor_entry(account)
          local a = anchors[account]
          if not a then
            local raw = redis.call('HMGET', 'account_balance:' .. account, 'balance', 'closes')
            a = {balance = tonumber(raw[1] or ''), closes = tonumber(raw[2] or '0') or 0, dirty = false}
            anchors[account] = a
            anchor_order[#anchor_order + 1] = account
          end
          return a
        end
        local function anchor(account)
          local a = anchor_entry(account)
          return a.balance, a.closes
        end
        local function set_anchor(account, balance)
          local value = tonumber(balance or '')
          if value then
            local a = anchor_entry(account)
            a.balance, a.closes, a.dirty = value, 0, true
          end
        end
        local function count_unseen_close(account)
          local a = anchor_entry(account)
          if a.balance then a.closes, a.dirty = a.closes + 1, true end
        end

        local function confirmation(a)
          local stream_id, fire_id, status, ticket, price, lot, message, account, uuid, at, balance =
            a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]
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
          local outcome = 'ok'
          if target == 'filled' then
            -- The EA zeroes a stop or target on the wrong side of its fill price and does not say so.
            local p, sl, tp = tonumber(price) or 0, tonumber(f['sl'] or '') or 0, tonumber(f['tp'] or '') or 0
            local buy = f['direction'] == 'BUY'
            local sl_dropped = sl > 0 and ((buy and sl >= p) or ((not buy) and sl <= p))
            local tp_dropped = tp > 0 and ((buy and tp <= p) or ((not buy) and tp >= p))
            if sl_dropped and tp_dropped then outcome = 'ok:sl_tp_dropped'
            elseif sl_dropped then outcome = 'ok:sl_dropped'
            elseif tp_dropped then outcome = 'ok:tp_dropped' end
            local pkey = 'position:' .. ticket
            redis.call('HSET', pkey, 'ticket', ticket, 'fire_id', fire_id, 'signal_id', f['signal_id'],
              'user_uuid', uuid, 'account', account, 'symbol', f['symbol'], 'direction', f['direction'],
              'lot', lot, 'open_price', price, 'sl', sl_dropped and '0' or (f['sl'] or '0'), 'tp', tp_dropped and '0' or (f['tp'] or '0'),
              'open_time', at, 'tick_size', f['tick_size'], 'tick_value', f['tick_value'], 'status', 'open')
            -- Only what says something: a broker name that differs, a stop or target the EA dropped.
            if f['broker_symbol'] and f['broker_symbol'] ~= f['symbol'] then redis.call('HSET', pkey, 'broker_symbol', f['broker_symbol']) end
            if sl_dropped or tp_dropped then
              redis.call('HSET', pkey, 'sl_dropped', sl_dropped and '1' or '0', 'tp_dropped', tp_dropped and '1' or '0',
                'sl_requested', f['sl'] or '0', 'tp_requested', f['tp'] or '0')
            end
            if sl_dropped or tp_dropped then
              redis.call('HSET', key, 'sl_dropped', sl_dropped and '1' or '0', 'tp_dropped', tp_dropped and '1' or '0')
              f['sl_dropped'], f['tp_dropped'] = sl_dropped and '1' or '0', tp_dropped and '1' or '0'
            end
            redis.call('SADD', 'all_open_positions', ticket)
            redis.call('SADD', 'user_positions:' .. uuid, ticket)
            -- A fire holds its slot while pending or sent; one that timed out gave it back and takes it again.
            if was == 'timed_out' then redis.call('SADD', 'slots:' .. uuid, fire_id) end
          else
            redis.call('SREM', 'slots:' .. uuid, fire_id)
          end
          set_anchor(account, balance)
          publish('fire.' .. target, f)
          return outcome
        end

        -- A quote the entry carries for `symbol`: bid to close a BUY, ask to close a SELL.
        local function market_price(quotes, symbol, direction)
          for entry in string.gmatch(quotes or '', '[^;]+') do
            local sym, bid, ask, src = string.match(entry, '^(.+):([^:]+):([^:]+):(%a+)$')
            if sym == symbol then
              local price = tonumber((direction == 'BUY') and bid or ask)
              if price and price > 0 then return price, src end
            end
          end
          return nil, nil
        end

        local function cents_of(raw) return (raw >= 0) and math.floor(raw * 100 + 0.5) or -math.floor(-raw * 100 + 0.5) end

        -- Closes one open position: valued at `price` (nil: from the balance, or unvalued), or at the
        -- balance difference `by_balance` when given. Returns the trade for the event.
        local function settle(ticket, p, price, source, reason, by_balance, at_text, day)
          local pkey = 'position:' .. ticket
          local at = tonumber(at_text)
          local dir = (p['direction'] == 'BUY') and 1 or -1
          local open_price, plot = tonumber(p['open_price']), tonumber(p['lot'])
          local per_price = tonumber(p['tick_value']) * plot / tonumber(p['tick_size'])
          local by_price = price and cents_of((price - open_price) * dir * per_price) or nil
          local cents, profit_source = by_price, 'price'
          if by_balance then cents, profit_source = cents_of(by_balance), 'balance' end
          if not price and cents then
            -- No quote: the close price follows from the balance.
            price, source = open_price + cents / 100 / per_price * dir, 'balance'
          end
          local counted = cents ~= nil
          if not counted then price, source, cents, profit_source = open_price, 'unvalued', 0, 'none' end
          local close_text = string.format('%.8f', price):gsub('0+$', ''):gsub('%.$', '')
          local profit = string.format('%.2f', cents / 100)
          local duration = string.format('%.0f', at - tonumber(p['open_time']))
          local result = (not counted) and 'unvalued' or ((cents > 0) and 'win' or ((cents < 0) and 'loss' or 'breakeven'))
          redis.call('HSET', pkey, 'status', 'closed', 'close_price', close_text, 'profit', profit, 'closed_at', at_text,
            'close_time', at_text, 'duration', duration, 'result', result, 'close_price_source', source,
            'close_reason', reason, 'profit_source', profit_source)
          -- Both figures only when there were two to compare.
          if by_price and by_balance then
            redis.call('HSET', pkey, 'profit_by_price', string.format('%.2f', by_price / 100),
              'profit_by_balance', string.format('%.2f', cents_of(by_balance) / 100))
          end
          redis.call('SREM', 'all_open_positions', ticket)
          redis.call('SREM', 'user_positions:' .. p['user_uuid'], ticket)
          redis.call('SREM', 'slots:' .. p['user_uuid'], p['fire_id'] or '')
          push_later('closed_positions:' .. p['user_uuid'], ticket)
          local ckey = 'close:' .. ticket
          local cstate = redis.call('HGET', ckey, 'state')
          if cstate and T[cstate] and T[cstate]['filled'] then
            redis.call('HSET', ckey, 'state', 'filled', 'confirmed_at', at_text, 'close_price', close_text, 'profit', profit,
              'close_price_source', source)
            redis.call('ZREM', 'fires:deadlines', ckey)
          end
          local function g(k) return p[k] or '' end
          local trade = {ticket = ticket, fire_id = g('fire_id'), signal_id = g('signal_id'), user_uuid = g('user_uuid'),
            account = g('account'), symbol = g('symbol'), direction = g('direction'), lot = g('lot'),
            open_price = g('open_price'), close_price = close_text, sl = g('sl'), tp = g('tp'), open_time = g('open_time'),
            close_time = at_text, duration = duration, profit = profit, result = result, close_price_source = source,
            close_reason = reason, profit_source = profit_source}
          -- The trade record is the closed position copied (one command instead of writing every field again).
          local tkey = 'trade:' .. ticket
          redis.call('COPY', pkey, tkey, 'REPLACE')
          redis.call('EXPIRE', tkey, 2592000)
          for _, list in ipairs({'trades:' .. p['symbol'], 'trades:account:' .. p['account'], 'trades:day:' .. day,
                                 'trades:recent'}) do
            push_later(list, ticket)
          end
          expires['trades:day:' .. day] = true
          if counted then
            stats('global_trade_stats', cents, at_text)
            stats('symbol_stats:' .. p['symbol'], cents, at_text)
            stats('account_stats_trades:' .. p['account'], cents, at_text)
            stats('user_stats:' .. p['user_uuid'], cents, at_text)
          end
          publish('position.closed', trade)
          return trade
        end

        local function close(a)
          local stream_id, ticket, status, close_text = a[1], a[2], a[3], a[4]
          local close_price, message, account, uuid, at_text, day = tonumber(a[4]), a[6], a[7], a[8], a[9], a[10]
          local command_type, balance, quotes = a[11], a[12], a[13]
          if status ~= 'success' then
            if not redis.call('SET', 'done:entry:' .. stream_id, '1', 'NX', 'EX', 2592000) then return 'duplicate' end
            local ckey = 'close:' .. ticket
            local cstate = redis.call('HGET', ckey, 'state')
            if cstate and T[cstate] and T[cstate]['rejected'] then
              redis.call('HSET', ckey, 'state', 'rejected', 'ea_message', message, 'confirmed_at', at_text)
              redis.call('ZREM', 'fires:deadlines', ckey)
            end
            publish('close.rejected', {ticket = ticket, user_uuid = uuid, ea_message = message})
            -- The broker closed it already (a stop or target hit, or by hand), unseen: closed at the market.
            if message == 'Position not found' and ticket ~= '0' then
              local p = hgetall('position:' .. ticket)
              if p['status'] == 'open' and p['user_uuid'] == uuid then
                local price, source = market_price(quotes, p['symbol'], p['direction'])
                settle(ticket, p, price, source and 'market' or nil, 'closed_at_broker', nil, at_text, day)
                count_unseen_close(p['account'])
                return 'ok'
              end
            end
            return 'rejected'
          end
          if ticket == '0' then
            -- close_all: ONE answer with ticket 0 for every position of that account.
            if command_type ~= 'close_all' then return 'ignored' end
            local open = {}
            for _, t in ipairs(redis.call('SMEMBERS', 'user_positions:' .. uuid)) do
              local p = hgetall('position:' .. t)
              if p['status'] == 'open' and p['account'] == account then open[#open + 1] = {t, p} end
            end
            if #open == 0 then
              set_anchor(account, balance)
              return 'ignored'
            end
            table.sort(open, function(x, y) return tonumber(x[1]) < tonumber(y[1]) end)
            local before, unseen = anchor(account)
            local by_balance = nil
            if #open == 1 and before and unseen == 0 and tonumber(balance or '') then by_balance = tonumber(balance) - before end
            for _, item in ipairs(open) do
              local price, source = market_price(quotes, item[2]['symbol'], item[2]['direction'])
              settle(item[1], item[2], price, source and 'market' or nil, 'close_all', by_balance, at_text, day)
            end
            set_anchor(account, balance)
            return 'ok:' .. #open
          end
          local p = hgetall('position:' .. ticket)
          if not p['status'] then
            orphan(stream_id, {stream_id = stream_id, ticket = ticket, user_uuid = uuid, status = status, kind = 'close'})
            return 'unknown_position'
          end
          if p['status'] == 'closed' then return 'duplicate' end
          local price, source = nil, nil
          if close_price and close_price > 0 then
            price, source = close_price, 'ea'
          else
            local quoted, from = market_price(quotes, p['symbol'], p['direction'])
            if quoted then price, source = quoted, 'market' end
          end
          local before, unseen = anchor(p['account'])
          local by_balance = nil
          if before and unseen == 0 and tonumber(balance or '') then by_balance = tonumber(balance) - before end
          settle(ticket, p, price, source, 'requested', by_balance, at_text, day)
          set_anchor(p['account'], balance)
          return 'ok'
        end

        -- The market crossed a position's stop loss or take profit: the broker closed it at that level,
        -- and the EA reports nothing.
        local function inferred(a)
          local ticket, reason, level, at_text, day = a[2], a[3], tonumber(a[4]), a[5], a[6]
          local p = hgetall('position:' .. ticket)
          if not p['status'] then return 'unknown_position' end
          if p['status'] == 'closed' then return 'duplicate' end
          settle(ticket, p, level, 'inferred', reason, nil, at_text, day)
          count_unseen_close(p['account'])
          return 'ok'
        end

        local results = {}
        local i = 1
        while i <= #ARGV do
          local kind, n = ARGV[i], tonumber(ARGV[i + 1])
          local a = {}
          for j = 1, n do a[j] = ARGV[i + 1 + j] end
          local handler = (kind == 'c' and confirmation) or (kind == 'x' and close) or inferred
          local ok, result = pcall(handler, a)
          if ok then
            results[#results + 1] = result
          else
            -- A close that failed to apply still moved the account's balance: the next balance
            -- difference is not one position's.
            if kind == 'x' and a[7] then pcall(count_unseen_close, a[7]) end
            local text = (type(result) == 'table' and (result.err or result.message)) or tostring(result)
            results[#results + 1] = 'error:' .. tostring(text)
          end
          i = i + n + 2
        end
        for _, list in ipairs(list_order) do
          if redis.call('LPUSH', list, unpack(lists[list])) > 1100 then redis.call('LTRIM', list, 0, 999) end
        end
        for key in pairs(expires) do redis.call('EXPIRE', key, 2592000) end
        for _, account in ipairs(anchor_order) do
          local a = anchors[account]
          if a.dirty then
            redis.call('HSET', 'account_balance:' .. account, 'balance', string.format('%.2f', a.balance), 'closes', a.closes)
            redis.call('EXPIRE', 'account_balance:' .. account, 2592000)
          end
        end
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

extension FireState {
    /// The transition table as a Lua table literal, `{pending={sent=true,…},…}`, so that the Redis
    /// scripts enforce exactly the transitions of `FireState.next` (the rules stay in BittenCore; this
    /// is the Redis adapter's form of them).
    static var luaTable: String {
        let rows = allCases.map { state in
            let targets = state.next.map(\.rawValue).sorted().map { "[\"\($0)\"]=true" }.joined(separator: ",")
            return "[\"\(state.rawValue)\"]={\(targets)}"
        }
        return "{" + rows.joined(separator: ",") + "}"
    }
}
