"""Privacy-enhancing technologies: private set intersection, MPC, joint ML."""
