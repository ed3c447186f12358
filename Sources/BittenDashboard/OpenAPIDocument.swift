/// The HTTP API's contract, served at `/openapi.yaml`. The tests validate live responses against
/// the schemas here, so a field renamed in code and not here fails the build's tests.
enum OpenAPIDocument {
    static let yaml = #"""
openapi: 3.0.3
info:
  title: Bitten HTTP API
  version: "1"
  description: |
    Health, nodes, trading and CITADEL state of a running Bitten. JSON everywhere; field names are
    snake_case and stable. Errors are {"error":{"code":…,"message":…}} with a 4xx or 5xx status.
    Mutating calls need `Authorization: Bearer <BITTEN_API_TOKEN>` when a token is configured.
servers:
  - url: http://127.0.0.1:5567
paths:
  /health:
    get:
      summary: Overall status, health score 0-100 with its factors, Redis, ports, nodes and process.
      responses:
        "200": {description: Redis reachable, content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}}
        "503": {description: Redis unreachable (same body), content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}}
  /services:
    get:
      summary: Every service with state, uptime, last activity, counters.
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Services"}}}}
  /nodes:
    get:
      summary: Registered EA nodes, paginated, filterable and sortable.
      parameters:
        - {name: page, in: query, schema: {type: integer, minimum: 1}}
        - {name: page_size, in: query, schema: {type: integer, minimum: 1, maximum: 500}}
        - {name: status, in: query, schema: {type: string, enum: [online, offline]}}
        - {name: broker, in: query, schema: {type: string}}
        - {name: q, in: query, description: substring of UUID, account or broker, schema: {type: string}}
        - {name: sort, in: query, schema: {type: string, enum: [uuid, last_heartbeat, balance, equity, latency, broker]}}
        - {name: order, in: query, schema: {type: string, enum: [asc, desc]}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/NodePage"}}}}
        "400": {description: bad parameter, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /nodes/{uuid}:
    get:
      parameters: [{name: uuid, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Node"}}}}
        "404": {description: unknown node, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /nodes/{uuid}/approve:
    post:
      summary: "Take the pending account switch: the pin moves to the new account, server and machine (token required)."
      parameters: [{name: uuid, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: done, content: {application/json: {schema: {$ref: "#/components/schemas/Node"}}}}
        "401": {description: token missing or wrong, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
        "404": {description: unknown node, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
        "409": {description: nothing to approve, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /nodes/{uuid}/dismiss:
    post:
      summary: "Dismiss the pending account switch, e.g. an intruder; the pin stays (token required)."
      parameters: [{name: uuid, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: done, content: {application/json: {schema: {$ref: "#/components/schemas/Node"}}}}
        "401": {description: token missing or wrong, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
        "404": {description: unknown node, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
        "409": {description: nothing to dismiss, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /nodes/{uuid}/unpin:
    post:
      summary: "Clear the node's pin; the next HELLO pins it again (token required)."
      parameters: [{name: uuid, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: done, content: {application/json: {schema: {$ref: "#/components/schemas/Node"}}}}
        "401": {description: token missing or wrong, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
        "404": {description: unknown node, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
        "409": {description: nothing to unpin, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /positions:
    get:
      summary: Open positions with live (unrealized) P&L and exposure per symbol.
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Positions"}}}}
  /positions/{ticket}:
    get:
      parameters: [{name: ticket, in: path, required: true, schema: {type: integer}}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Position"}}}}
        "404": {description: unknown ticket, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /positions/{ticket}/close:
    post:
      parameters: [{name: ticket, in: path, required: true, schema: {type: integer}}]
      responses:
        "202": {description: close sent to the EA, content: {application/json: {schema: {$ref: "#/components/schemas/Fire"}}}}
  /trades:
    get:
      summary: Recent closed trades, newest first (one filter at a time).
      parameters:
        - {name: symbol, in: query, schema: {type: string}}
        - {name: account, in: query, schema: {type: integer}}
        - {name: day, in: query, description: YYYY-MM-DD, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Trades"}}}}
        "400": {description: bad parameter, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /stats:
    get:
      summary: Win rate, P&L and streaks over every closed trade (also /stats/symbols/{symbol}, /stats/accounts/{account}, /stats/users/{uuid}).
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Stats"}}}}
  /signals:
    get:
      summary: Recent signals with their CITADEL score.
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Signals"}}}}
    post:
      summary: Submit a signal (engine or short form).
      responses:
        "201": {description: accepted, content: {application/json: {schema: {$ref: "#/components/schemas/Signal"}}}}
        "400": {description: invalid signal, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /signals/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Signal"}}}}
  /fire/{signal_id}:
    post:
      summary: Fire a signal for one user ({"user_uuid":…}); idempotent per (signal, user).
      parameters: [{name: signal_id, in: path, required: true, schema: {type: string}}]
      responses:
        "201": {description: sent, content: {application/json: {schema: {$ref: "#/components/schemas/Fire"}}}}
        "200": {description: the earlier fire of this pair, content: {application/json: {schema: {$ref: "#/components/schemas/Fire"}}}}
        "409": {description: refused (no slot, EA offline…), content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /fires:
    get:
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Fires"}}}}
  /fires/{fire_id}:
    get:
      parameters: [{name: fire_id, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Fire"}}}}
  /users:
    get:
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Users"}}}}
    post:
      summary: Create a user ({"uuid":…,"tier":…}).
      responses:
        "201": {description: created, content: {application/json: {schema: {$ref: "#/components/schemas/User"}}}}
  /users/{uuid}:
    get:
      parameters: [{name: uuid, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/User"}}}}
  /alerts:
    get:
      summary: System alerts and CITADEL alerts, newest first.
      parameters:
        - {name: source, in: query, schema: {type: string, enum: [system, citadel]}}
        - {name: kind, in: query, schema: {type: string}}
        - {name: symbol, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Alerts"}}}}
        "400": {description: bad parameter, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /citadel:
    get:
      responses:
        "200": {description: symbols tracked and recent alerts, content: {application/json: {schema: {$ref: "#/components/schemas/CitadelSummary"}}}}
  /citadel/score:
    get:
      parameters:
        - {name: symbol, in: query, required: true, schema: {type: string}}
        - {name: entry, in: query, required: true, schema: {type: number}}
        - {name: direction, in: query, schema: {type: string, enum: [BUY, SELL]}}
        - {name: sl, in: query, schema: {type: number}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/ProtectionScore"}}}}
        "400": {description: bad parameter, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /citadel/{symbol}:
    get:
      parameters: [{name: symbol, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/CitadelSymbol"}}}}
        "404": {description: no data for the symbol, content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /snapshot:
    get:
      summary: Everything the dashboard shows, in one object (what /events streams).
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Snapshot"}}}}
  /events:
    get:
      summary: Server-Sent Events; one `snapshot` event (a Snapshot) every `interval` seconds (default 2).
      parameters: [{name: interval, in: query, schema: {type: integer, minimum: 1, maximum: 60}}]
      responses:
        "200": {description: event stream, content: {text/event-stream: {schema: {type: string}}}}
  /metrics:
    get:
      summary: Prometheus text format.
      responses:
        "200": {description: ok, content: {text/plain: {schema: {type: string}}}}
  /:
    get:
      summary: The live dashboard (also /dashboard).
      responses:
        "200": {description: HTML page, content: {text/html: {schema: {type: string}}}}
components:
  schemas:
    Error:
      type: object
      required: [error]
      properties:
        error:
          type: object
          required: [code, message]
          properties: {code: {type: string}, message: {type: string}}
    Health:
      type: object
      required: [status, version, redis, services, ports, process]
      properties:
        status: {type: string, enum: [healthy, degraded, critical, stopping]}
        version: {type: string}
        health_score: {type: integer, minimum: 0, maximum: 100}
        health_factors: {type: object, additionalProperties: {type: number}}
        redis:
          type: object
          required: [reachable, state]
          properties:
            reachable: {type: boolean}
            state: {type: string}
            ping_ms: {type: number}
            used_memory_bytes: {type: integer}
            mode: {type: string, enum: [single, cluster]}
            primaries: {type: integer}
        not_running: {type: object, additionalProperties: {type: string}}
        services: {type: array, items: {$ref: "#/components/schemas/Service"}}
        ports:
          type: array
          items:
            type: object
            required: [name, port, socket_type, received, sent, failed]
            properties:
              name: {type: string}
              port: {type: integer}
              socket_type: {type: string}
              received: {type: integer}
              sent: {type: integer}
              failed: {type: integer}
              received_per_second: {type: number, description: messages/s over the last seconds}
              sent_per_second: {type: number}
        nodes:
          type: object
          required: [online, total]
          properties: {online: {type: integer}, total: {type: integer}}
        process:
          type: object
          required: [pid, uptime_seconds]
          properties:
            pid: {type: integer}
            uptime_seconds: {type: number}
            rss_bytes: {type: integer}
            rss_after_release_bytes: {type: integer, description: RSS right after the last release of freed memory (every 30 s)}
            memory_released_at: {type: number}
            cpu_seconds: {type: number}
            data_dir_free_bytes: {type: integer}
    Service:
      type: object
      required: [name, state, messages_in, messages_out, errors, restarts]
      properties:
        name: {type: string}
        state: {type: string, enum: [starting, running, stopping, stopped, failed]}
        started_at: {type: number}
        last_activity: {type: number}
        messages_in: {type: integer}
        messages_out: {type: integer}
        errors: {type: integer}
        restarts: {type: integer}
        detail: {type: string}
        uptime_seconds: {type: number}
    Services:
      type: object
      required: [services]
      properties: {services: {type: array, items: {$ref: "#/components/schemas/Service"}}}
    Node:
      type: object
      required: [uuid, node_id, status, account, broker, server, currency, balance, equity, leverage, last_heartbeat, heartbeat_age_seconds, uptime_seconds, reconnects, account_switches]
      properties:
        uuid: {type: string}
        node_id: {type: string}
        status: {type: string, enum: [online, offline]}
        account: {type: integer}
        broker: {type: string}
        server: {type: string}
        currency: {type: string}
        balance: {type: number}
        equity: {type: number}
        leverage: {type: integer}
        last_heartbeat: {type: number}
        heartbeat_age_seconds: {type: number}
        latency_ms: {type: number}
        uptime_seconds: {type: number}
        reconnects: {type: integer}
        account_switches: {type: integer}
        offline_reason: {type: string}
        company: {type: string}
        version: {type: string}
        commands_unread: {type: boolean}
        pin:
          type: object
          description: what the first registration fixed; messages that disagree are refused or wait for approval
          required: [account, server, peer, since]
          properties: {account: {type: integer}, server: {type: string}, peer: {type: string}, since: {type: number}}
        pending_switch:
          type: object
          description: a registration with another account or server, waiting for approval (no fires meanwhile)
          required: [account, server, peer, since]
          properties: {account: {type: integer}, server: {type: string}, peer: {type: string}, since: {type: number}}
        last_refused:
          type: object
          required: [peer, account, reason, at]
          properties: {peer: {type: string}, account: {type: integer}, reason: {type: string}, at: {type: number}}
        broker_symbols:
          type: array
          items: {type: object, required: [symbol, broker_symbol], properties: {symbol: {type: string}, broker_symbol: {type: string}}}
    NodePage:
      type: object
      required: [total, page, page_size, nodes]
      properties:
        total: {type: integer}
        page: {type: integer}
        page_size: {type: integer}
        nodes: {type: array, items: {$ref: "#/components/schemas/Node"}}
    Position:
      type: object
      required: [ticket, fire_id, signal_id, user_uuid, account, symbol, direction, lot, open_price, sl, tp, open_time, status]
      properties:
        ticket: {type: integer}
        fire_id: {type: string}
        signal_id: {type: string}
        user_uuid: {type: string}
        account: {type: integer}
        symbol: {type: string}
        direction: {type: string, enum: [BUY, SELL]}
        lot: {type: number}
        open_price: {type: number}
        sl: {type: number}
        tp: {type: number}
        open_time: {type: number}
        status: {type: string, enum: [open, closed]}
        close_price: {type: number}
        closed_at: {type: number}
        profit: {type: number}
        unrealized_profit: {type: number}
        current_price: {type: number}
        broker_symbol: {type: string}
        sl_dropped: {type: boolean}
        tp_dropped: {type: boolean}
        close_price_source: {type: string, enum: [ea, market, inferred, balance, unvalued]}
        close_reason: {type: string, enum: [requested, close_all, stop_loss, take_profit, closed_at_broker]}
        profit_source: {type: string, enum: [balance, price, none]}
    Positions:
      type: object
      required: [positions, exposure, unrealized_profit, as_of]
      properties:
        positions: {type: array, items: {$ref: "#/components/schemas/Position"}}
        exposure:
          type: array
          items:
            type: object
            required: [symbol, positions, net_lots, unrealized_profit]
            properties: {symbol: {type: string}, positions: {type: integer}, net_lots: {type: number}, unrealized_profit: {type: number}}
        unrealized_profit: {type: number}
        as_of: {type: number}
    Trades:
      type: object
      required: [trades]
      properties:
        trades:
          type: array
          items:
            type: object
            required: [ticket, symbol, direction, lot, open_price, close_price, profit, result]
            properties:
              ticket: {type: integer}
              account: {type: integer}
              symbol: {type: string}
              direction: {type: string}
              lot: {type: number}
              open_price: {type: number}
              close_price: {type: number}
              profit: {type: number}
              result: {type: string, enum: [win, loss, breakeven, unvalued]}
              open_time: {type: number}
              close_time: {type: number}
              duration: {type: number}
              broker_symbol: {type: string}
              close_price_source: {type: string, enum: [ea, market, inferred, balance, unvalued]}
              close_reason: {type: string, enum: [requested, close_all, stop_loss, take_profit, closed_at_broker]}
              profit_source: {type: string, enum: [balance, price, none]}
              profit_by_price: {type: number}
              profit_by_balance: {type: number}
              sl_dropped: {type: string, enum: ["0", "1"]}
              tp_dropped: {type: string, enum: ["0", "1"]}
    Stats:
      type: object
      required: [total, wins, losses, breakeven, win_rate, gross_profit, gross_loss, net, average_win, average_loss, largest_win, largest_loss, current_streak, best_streak, worst_streak]
      properties:
        total: {type: integer}
        wins: {type: integer}
        losses: {type: integer}
        breakeven: {type: integer}
        win_rate: {type: number}
        gross_profit: {type: number}
        gross_loss: {type: number}
        net: {type: number}
        profit_factor: {type: number}
        average_win: {type: number}
        average_loss: {type: number}
        largest_win: {type: number}
        largest_loss: {type: number}
        current_streak: {type: integer}
        best_streak: {type: integer}
        worst_streak: {type: integer}
    Signal:
      type: object
      required: [signal_id, symbol, direction, entry, stop_loss, take_profit, source, created_at, expires_at, received_at, protection_score, risk_level, citadel_multiplier]
      properties:
        signal_id: {type: string}
        symbol: {type: string}
        direction: {type: string, enum: [BUY, SELL]}
        entry: {type: number}
        stop_loss: {type: number}
        take_profit: {type: number}
        confidence: {type: number}
        source: {type: string}
        created_at: {type: number}
        expires_at: {type: number}
        received_at: {type: number}
        protection_score: {type: number, minimum: 1, maximum: 10}
        risk_level: {type: string, enum: [FORTRESS, PROTECTED, CAUTION, HIGH_RISK, DANGER]}
        citadel_multiplier: {type: number}
    Signals:
      type: object
      required: [signals]
      properties: {signals: {type: array, items: {$ref: "#/components/schemas/Signal"}}}
    Fire:
      type: object
      required: [fire_id, signal_id, user_uuid, symbol, direction, state, kind, created_at]
      properties:
        fire_id: {type: string}
        signal_id: {type: string}
        user_uuid: {type: string}
        symbol: {type: string}
        direction: {type: string}
        state: {type: string, enum: [pending, sent, filled, rejected, timed_out]}
        kind: {type: string, enum: [fire, close]}
        lot: {type: number}
        risk_percent: {type: number}
        risk_amount: {type: number}
        tier: {type: string, description: "the tier the fire was sized for"}
        citadel_multiplier: {type: number}
        ticket: {type: integer}
        fill_price: {type: number}
        created_at: {type: number}
        sent_at: {type: number}
        confirmed_at: {type: number}
        deadline: {type: number}
        duplicate: {type: boolean}
        broker_symbol: {type: string, description: "the symbol as the user's broker names it (what the command carried)"}
        tick_value: {type: number}
        conversion: {type: string, description: "currencies the tick value was converted through, e.g. JPY>USD>EUR"}
        sl_dropped: {type: boolean}
        tp_dropped: {type: boolean}
    Fires:
      type: object
      required: [fires]
      properties: {fires: {type: array, items: {$ref: "#/components/schemas/Fire"}}}
    User:
      type: object
      required: [uuid, tier, display_name, created_at, slots, slots_used, max_risk_percent]
      properties:
        uuid: {type: string}
        tier: {type: string}
        display_name: {type: string}
        risk_override: {type: number}
        created_at: {type: number}
        slots: {type: integer}
        slots_used: {type: integer}
        max_risk_percent: {type: number}
    Users:
      type: object
      required: [users]
      properties: {users: {type: array, items: {$ref: "#/components/schemas/User"}}}
    Alert:
      type: object
      required: [source, kind, message, timestamp]
      properties:
        source: {type: string, enum: [system, citadel]}
        kind: {type: string}
        symbol: {type: string}
        uuid: {type: string}
        message: {type: string}
        timestamp: {type: number}
    Alerts:
      type: object
      required: [alerts]
      properties: {alerts: {type: array, items: {$ref: "#/components/schemas/Alert"}}}
    ProtectionScore:
      type: object
      required: [symbol, entry_price, protection_score, risk_level, recommendation, factors, timestamp, multiplier, insights]
      properties:
        symbol: {type: string}
        entry_price: {type: number}
        direction: {type: string, enum: [BUY, SELL]}
        sl: {type: number}
        protection_score: {type: number, minimum: 1, maximum: 10}
        risk_level: {type: string, enum: [FORTRESS, PROTECTED, CAUTION, HIGH_RISK, DANGER]}
        recommendation: {type: string}
        multiplier: {type: number}
        insights: {type: array, items: {type: string}}
        timestamp: {type: integer}
        factors:
          type: object
          required: [zone_proximity, sweep_protection, volatility, time_risk, confluence]
          properties:
            zone_proximity: {type: number}
            sweep_protection: {type: number}
            volatility: {type: number}
            time_risk: {type: number}
            confluence: {type: number}
    CitadelSummary:
      type: object
      required: [symbols, ticks_seen, bars_seen, signals_watched, alerts]
      properties:
        symbols: {type: array, items: {type: string}}
        ticks_seen: {type: integer}
        bars_seen: {type: integer}
        signals_watched: {type: integer}
        alerts: {type: array, items: {type: object, required: [kind, symbol, timestamp, message]}}
    CitadelSymbol:
      type: object
      required: [symbol, bid, ask, pip, zones, sweeps, spread, volatility, bars, bar_source]
      properties:
        symbol: {type: string}
        bid: {type: number}
        ask: {type: number}
        pip: {type: number}
        bars: {type: integer}
        bar_source: {type: string, enum: [ohlc, ticks]}
        zones:
          type: array
          items:
            type: object
            required: [kind, price, strength, institutional, touches]
            properties:
              kind: {type: string, enum: [support, resistance]}
              price: {type: number}
              strength: {type: number, minimum: 1, maximum: 10}
              institutional: {type: boolean}
              touches: {type: integer}
        sweeps:
          type: array
          items:
            type: object
            required: [kind, zone_price, depth_pips, at, reversal]
            properties:
              kind: {type: string, enum: [bullish_sweep, bearish_sweep]}
              zone_price: {type: number}
              depth_pips: {type: number}
              at: {type: number}
              reversal: {type: string, enum: [BUY, SELL]}
        spread:
          type: object
          required: [current_pips, median_pips, p90_pips, p99_pips, samples]
          properties:
            current_pips: {type: number}
            median_pips: {type: number}
            p90_pips: {type: number}
            p99_pips: {type: number}
            samples: {type: integer}
        volatility:
          type: object
          required: [ratio]
          properties: {ratio: {type: number}, atr_pips: {type: number, nullable: true}}
    Snapshot:
      type: object
      required: [at, health, symbols, signals, alerts]
      properties:
        at: {type: number}
        health: {$ref: "#/components/schemas/Health"}
        nodes:
          type: object
          required: [online, total, brokers, recent]
          properties:
            online: {type: integer}
            total: {type: integer}
            brokers: {type: array, items: {type: object, required: [broker, online, total]}}
            recent: {type: array, items: {$ref: "#/components/schemas/Node"}}
        positions:
          type: object
          required: [count, unrealized_profit, positions]
          properties:
            count: {type: integer}
            unrealized_profit: {type: number}
            positions: {type: array, items: {$ref: "#/components/schemas/Position"}}
        stats: {$ref: "#/components/schemas/Stats"}
        symbols: {type: array, items: {type: object, required: [symbol, total, win_rate, net]}}
        signals: {type: array, items: {type: object, required: [signal_id, symbol, direction, entry, protection_score, risk_level, received_at]}}
        alerts: {type: array, items: {$ref: "#/components/schemas/Alert"}}
"""#
}
