"""The simulation's clock: every model (EBS, the controllers, the engine's waits) advances in ticks
of TICK_SECONDS; one constant so that a day of EBS rate limits and a minute of a Pulumi await agree."""

TICK_SECONDS = 5
DAY_TICKS = 24 * 3600 // TICK_SECONDS
