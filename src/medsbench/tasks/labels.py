"""Closed label sets and label statistics shared by converters, ``data audit`` and the metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

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


# The 49 DDXPlus conditions (task130), English names as in the release's
# release_conditions.json (``cond-name-eng``, spelling kept, e.g. 'Larygospasm'). The DDXPlus
# converter writes them lower-cased; strict diagnosis scoring matches them case-insensitively.
DDXPLUS_CONDITIONS: tuple[str, ...] = (
    'Acute COPD exacerbation / infection',
    'Acute dystonic reactions',
    'Acute laryngitis',
    'Acute otitis media',
    'Acute pulmonary edema',
    'Acute rhinosinusitis',
    'Allergic sinusitis',
    'Anaphylaxis',
    'Anemia',
    'Atrial fibrillation',
    'Boerhaave',
    'Bronchiectasis',
    'Bronchiolitis',
    'Bronchitis',
    'Bronchospasm / acute asthma exacerbation',
    'Chagas',
    'Chronic rhinosinusitis',
    'Cluster headache',
    'Croup',
    'Ebola',
    'Epiglottitis',
    'GERD',
    'Guillain-Barré syndrome',
    'HIV (initial infection)',
    'Influenza',
    'Inguinal hernia',
    'Larygospasm',
    'Localized edema',
    'Myasthenia gravis',
    'Myocarditis',
    'PSVT',
    'Pancreatic neoplasm',
    'Panic attack',
    'Pericarditis',
    'Pneumonia',
    'Possible NSTEMI / STEMI',
    'Pulmonary embolism',
    'Pulmonary neoplasm',
    'SLE',
    'Sarcoidosis',
    'Scombroid food poisoning',
    'Spontaneous pneumothorax',
    'Spontaneous rib fracture',
    'Stable angina',
    'Tuberculosis',
    'URTI',
    'Unstable angina',
    'Viral pharyngitis',
    'Whooping cough',
)

# The 7 'Radiation sequence with surgery' options of SEER (task131), as the SEER converter writes them.
SEER_OPTIONS: tuple[str, ...] = (
    "Intraoperative rad with other rad before/after surgery",
    "Intraoperative radiation",
    "No radiation and/or cancer-directed surgery",
    "Radiation after surgery",
    "Radiation before and after surgery",
    "Radiation prior to surgery",
    "Surgery both before and after radiation",
)


# ------------------------------------------------------------------ label statistics
# Pure functions over the gold labels of a closed-label task (one label string
# per instance). ``medsbench data audit`` and the scorer share them.


def label_distribution(labels: Sequence[str]) -> Counter[str]:
    """How often each label occurs (a ``collections.Counter``; empty for no labels)."""
    return Counter(labels)


def majority_baseline(labels: Sequence[str]) -> tuple[str | None, float | None]:
    """The majority class and the accuracy (percent, 0-100) of always answering it.

    Ties go to the label that sorts first, so the result does not depend on the
    order of the instances. ``(None, None)`` for an empty sequence (no number
    is better than a made-up one).
    """
    counts = label_distribution(labels)
    if not counts:
        return None, None
    label, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return label, 100.0 * count / len(labels)


def is_degenerate(labels: Sequence[str], threshold: float = 0.95) -> bool:
    """True when one label covers at least ``threshold`` of the instances (or only one label occurs).

    An empty sequence is not degenerate (there is nothing to judge).
    """
    counts = label_distribution(labels)
    if not counts:
        return False
    return len(counts) == 1 or max(counts.values()) / len(labels) >= threshold
