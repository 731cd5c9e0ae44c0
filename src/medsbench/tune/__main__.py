"""``python -m medsbench.tune ...`` == ``medsbench tune ...``; the form accelerate/torchrun launch:

    accelerate launch --config_file configs/accelerate/ddp.yaml -m medsbench.tune run \\
        --base default --data WORKSPACE/mixtures/NAME --out WORKSPACE/models/NAME
"""

from __future__ import annotations

import sys

from medsbench.cli import main

if __name__ == "__main__":
    main(["tune", *sys.argv[1:]])
