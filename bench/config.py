"""How big each figure's run is: full, ``--quick``, or set per figure on the command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BenchConfig:
    figures: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    quick: bool = False
    #: Figure 1: sign-ins counted per side after the warm-up.
    count_signins: int = 20
    #: Figure 2: timed sign-ins per side.
    timed_signins: int = 200
    #: Figure 2's far-away table: sign-ins per side with the IdP's answers delayed by
    #: ``remote_idp_ms`` (an IdP in a cloud region rather than on loopback).
    remote_signins: int = 50
    remote_idp_ms: float = 20.0
    #: Figure 3: stored SSOSession rows, and timed logouts per size and kind.
    row_sizes: list[int] = field(default_factory=lambda: [100, 10_000, 100_000])
    logouts: int = 100
    #: Figure 4: connectors (one domain each), and login POSTs measured.
    connectors: int = 10_000
    hrd_posts: int = 300
    #: Figure 5: sign-ins per side (ours, stock) per stack, simulated browsers at once,
    #: gunicorn workers, distinct people per side, time cap per side per stack (seconds),
    #: and the stacks (``bench/stacks.py``). Full size: 4 runs of 2 000 sign-ins, each at
    #: most 300 s, so ``--only 5`` ends within about 25 minutes on 2 cores.
    load_signins: int = 2_000
    load_clients: int = 8
    load_workers: int = 4
    load_users: int = 200
    load_time_cap: float = 300.0
    load_stacks: list[str] = field(default_factory=lambda: ["sqlite", "postgres+redis"])
    #: Figure 6: page views per kind of session.
    page_views: int = 2_000
    #: Figure 7: timed requests per side, and sessions whose window is made to pass.
    revalidation_views: int = 1_000
    revalidation_sessions: int = 20
    #: Figure 8: users provisioned, members per group PATCH, SSO sessions of the deactivated.
    #: 10 000 users take about 100 s on 2 cores.
    scim_users: int = 10_000
    scim_batch: int = 100
    scim_sessions: int = 10
    #: Figure 9: timed SAML sign-ins per kind.
    saml_signins: int = 100
    #: Figure 10: timed API requests per side, and connectors taking API tokens.
    api_requests: int = 5_000
    api_connectors: int = 10_000
    #: Figure 11: sign-ins per column whose SQL statements are counted.
    query_signins: int = 10
    postgres: bool = False

    @classmethod
    def quick_run(cls) -> BenchConfig:
        return cls(
            quick=True,
            timed_signins=40,
            remote_signins=10,
            row_sizes=[100, 1_000, 10_000],
            logouts=30,
            connectors=10_000,
            hrd_posts=60,
            load_signins=100,
            load_time_cap=6.0,
            page_views=300,
            revalidation_views=300,
            scim_users=300,
            saml_signins=20,
            api_requests=300,
            api_connectors=10_000,
        )
