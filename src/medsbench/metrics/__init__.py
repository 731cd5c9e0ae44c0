"""medsbench.metrics"""
