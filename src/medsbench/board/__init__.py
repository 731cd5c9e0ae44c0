"""medsbench.board"""
