"""medsbench.tune"""
