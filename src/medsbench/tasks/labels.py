"""Closed label sets shared by the converters that write them and the metrics that read them."""

# The ten hallmarks of cancer (HoC, task106), lower-case as the official scorer matches them.
HALLMARKS: tuple[str, ...] = (
    "sustaining proliferative signaling",
    "evading growth suppressors",
    "resisting cell death",
    "enabling replicative immortality",
    "inducing angiogenesis",
    "activating invasion and metastasis",
    "genomic instability and mutation",
    "tumor promoting inflammation",
    "cellular energetics",
    "avoiding immune destruction",
)
