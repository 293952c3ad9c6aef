"""The release controller: every workload carbongate holds back is released on time.

- :mod:`deferral.workloads` — what a held Pod or Job says (release_by from annotations);
- :mod:`deferral.release` — the decision: deadline first, then the Rego policy, then fallbacks;
- :mod:`deferral.patches` — the JSON patches that release, guarded by ``test`` operations;
- :mod:`deferral.watch`, :mod:`deferral.kube` — list and watch through the ``kubernetes`` client;
- :mod:`deferral.controller` — the reconciler and its timer heap (:mod:`deferral.timers`);
- Lease election in :mod:`carbongate.leases`; :mod:`deferral.events`, :mod:`deferral.metrics`;
- :mod:`deferral.service` — assembly from the settings (``python -m deferral``).

Importing the package does nothing else. docs/deferral.md explains the guarantee.
"""
