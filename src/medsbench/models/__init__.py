"""medsbench.models"""
