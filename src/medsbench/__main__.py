"""``python -m medsbench ...`` == ``medsbench ...``: the form launchers take, e.g.

    accelerate launch --config_file configs/accelerate/ddp.yaml -m medsbench tune run \\
        --base default --data WORKSPACE/mixtures/NAME --out WORKSPACE/models/NAME
"""

from medsbench.cli import main

if __name__ == "__main__":
    main()
