"""Text of the files the scaffolding writes. Kept as plain strings so what a new user gets is readable."""

CONFIG = '''\
# wispd project configuration (see the wispd README and docs/configuration.md).
# Runs with no exchange keys: a simulated exchange and a paper account.

[daemon]
# Directories relative to this file; under systemd leave them out (the unit provides them).
run_dir = "../var/run"
state_dir = "../var/state"
log_dir = "../var/log"

[daemon.metrics]
# Chosen for this project by `wispctl init` (free when it was created, and unlikely to be another
# project's): two projects on one machine do not fight over one port. A port in use is a start error.
bind = "127.0.0.1:{metrics_port}"

[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
klines = ["1m"]

[exchanges.sim.sim]
seed = 1
volatility = 1.5
prices = {{ BTC-USDT = 60000.0 }}

[executors.paper]
mode = "paper"
exchanges = ["sim"]

[executors.paper.paper]
balances = {{ USDT = "10000" }}
'''

STRATEGY = '''\
"""{title}: a starting point. Edit run(); wispd restarts the process if it raises.

Written to survive restarts: on_start runs only once the executor has reported this strategy's position
and working orders, so a restarted strategy sees what it holds; it enters only when flat with nothing
working, and each entry's signal id is the candle's time, so a repeat is refused as a duplicate."""

from wispd.sdk import Decimal, Param, Strategy, indicators, pair


class {cls}(Strategy):
    params = {{
        "exchange": Param(str, "sim"),
        "base": Param(str, "BTC"),
        "quote": Param(str, "USDT"),
        "fast": Param(int, 10, min=2),
        "slow": Param(int, 30, min=3),
        "qty": Param(Decimal, "0.001"),
    }}

    def on_start(self, ctx):
        self.pair = pair(self.p.base, self.p.quote)
        ctx.spot.watch_pair(self.p.exchange, self.pair)

    def run(self, ctx):
        for _ in ctx.every(5):
            klines = ctx.spot.klines(self.p.exchange, self.pair, "1m", limit=self.p.slow + 1)
            fast, slow = indicators.sma(klines, self.p.fast), indicators.sma(klines, self.p.slow)
            if fast is None or slow is None:
                continue
            held = ctx.spot.position(self.p.exchange, self.pair).qty
            working = ctx.spot.open_orders(self.pair)
            candle = klines[-1].t
            if fast > slow and held == 0 and not working:
                entry = ctx.spot.signal("{name}-enter").id(f"enter-{{candle}}")
                ctx.emit(entry.buy(self.pair, self.p.exchange, self.p.qty))
            elif fast < slow and held > 0 and not working:
                leave = ctx.spot.signal("{name}-exit").id(f"exit-{{candle}}")
                ctx.emit(leave.sell(self.pair, self.p.exchange, held))
            ctx.emit_status("tick", f"fast {{fast:.2f}} slow {{slow:.2f}}", position=str(held))
'''

STRATEGY_BLOCK = '''
[strategies.{name}]
file = "../strategies/{name}.py"
params = {{ exchange = "sim", base = "BTC", quote = "USDT" }}
'''

README = '''\
# {project}

A wispd project: strategies in `strategies/`, configuration in `config/wispd.toml`.

```sh
wispd run --config config/wispd.toml          # run (Ctrl-C stops everything in order)
wispctl --config config/wispd.toml status     # from another terminal
wispctl --config config/wispd.toml new strategy my_idea   # add a strategy, then: wispctl ... reload
```

It starts on a simulated exchange with a paper account. Strategy guide: the wispd repository's
docs/strategy-guide.md.
'''
