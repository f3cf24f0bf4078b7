"""``pulsegate demo``: the whole product on loopback with fake keys — emulator, worker, traffic, webhook sink and
dashboard as child processes, driven through a scripted provider-failure cycle (see
:mod:`pulsegate.jobs.cli.demo.orchestrator`).
"""
