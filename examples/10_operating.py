"""Operating a tree: configuration from the environment, and lifecycle events.

1. `Settings.load()` resolves the ``SUPER_VISOR_*`` variables for a tree. Here a dict stands in
   for the environment so the example prints the same thing everywhere; `super_visor.run()`
   and the ``super-visor`` command read ``.env`` and the real environment the same way.
2. `Settings.apply()` returns a *new* Supervisor with the values applied; the original is
   unchanged.
3. A malformed value is a `ConfigError` naming the variable, the value and what was expected.
4. An ``on_event`` callback sees every lifecycle transition, in order.

The CLI runs the same tree from this directory: ``super-visor check 10_operating:build``
prints the tree and the configuration with each value's source, ``super-visor plan
10_operating:build`` the start and stop plans, ``super-visor run 10_operating:build`` runs it.
"""

from __future__ import annotations

import anyio

from super_visor import (
    CancellationToken,
    ConfigError,
    Event,
    Settings,
    Supervisor,
    SupervisorBuilder,
)


async def web(token: CancellationToken) -> None:
    token.ready()
    await token.wait()


async def job(token: CancellationToken) -> str:
    return "done"  # a significant proc ending stops the tree


def show(event: Event) -> None:
    print(f"event: {event.kind.value} {event.path}", flush=True)


def build() -> Supervisor:
    return SupervisorBuilder("app").add_proc(web, grace=5.0).add_proc(job).on_event(show).build()


async def main() -> None:
    sup = build()
    environment = {"SUPER_VISOR__WEB__GRACE": "0.5", "SUPER_VISOR_MAX_RESTARTS": "10"}
    settings = Settings.load(sup, env_file=None, environ=environment)
    print(settings.render(sup), flush=True)

    configured = settings.apply(sup)
    setting = settings.get("grace", "web")
    assert setting is not None
    print(f"web grace in code: {sup.specs[0].grace:g}", flush=True)
    print(f"web grace applied: {configured.specs[0].grace:g} (from {setting.source})", flush=True)

    try:
        Settings.load(sup, env_file=None, environ={"SUPER_VISOR_GRACE": "soon"})
    except ConfigError as exc:
        print(f"ConfigError: {exc}", flush=True)

    report = await configured.start(handle_signals=False)
    print(f"exit code: {report.exit_code}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
