"""medsbench.runs"""
