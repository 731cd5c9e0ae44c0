"""medsbench.ins"""
