"""Reports and errors: what you get back, and what is raised when something goes wrong.

1. A bad tree is rejected by ``build()`` with `ConfigError` before anything runs.
2. A proc that raises is ``FAILED``. Its failure starts the shutdown (the proc is
   significant by default), the other procs stop in reverse order, and ``start()`` raises
   `SupervisorError`, an `ExceptionGroup` holding the proc's own exception, unwrapped, so
   ``except*`` works on it. ``.report`` still has every outcome.
3. ``report.exit_code`` is what ``super_visor.run()`` would exit with (here 1).
"""

from __future__ import annotations

import anyio

from super_visor import CancellationToken, ConfigError, SupervisorBuilder, SupervisorError


class PaymentGatewayDown(Exception):
    """The proc's own error type."""


async def web(token: CancellationToken) -> None:
    await token.wait()
    print(f"web: stopped because: {token.reason}", flush=True)


async def payments(token: CancellationToken) -> None:
    await anyio.sleep(0.1)
    msg = "gateway answered 503"
    raise PaymentGatewayDown(msg)


def show_config_error() -> None:
    try:
        SupervisorBuilder("app").add_proc(web).add_proc(web, grace=-1.0, name="web2").build()
    except ConfigError as exc:
        print(f"ConfigError: {exc}", flush=True)
        print(f"  path={exc.path!r}", flush=True)


async def main() -> None:
    show_config_error()
    app = SupervisorBuilder("app").add_proc(web).add_proc(payments).build()
    try:
        await app.start(handle_signals=False)
    except SupervisorError as exc:
        # The proc's own exception, unwrapped; `except* PaymentGatewayDown:` would match it.
        gateway_errors, _ = exc.split(PaymentGatewayDown)
        assert gateway_errors is not None
        error = gateway_errors.exceptions[0]
        print(f"caught {type(error).__name__}: {error}", flush=True)
        print(f"  notes: {error.__notes__}", flush=True)
        report = exc.report
        print(report.render(), flush=True)
        print(f"payments: {report['payments'].status.name}", flush=True)
        print(f"exit code run() would use: {report.exit_code}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
