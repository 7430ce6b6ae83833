from agents.batch_dqn.batch_dqn import BatchDQN
from agents.batch_dqn.policies import RegionQNetwork, RegionQPolicy

__all__ = ["BatchDQN", "RegionQNetwork", "RegionQPolicy"]
