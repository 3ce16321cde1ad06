"""Device and precision policy, seeding, checkpoint IO, run directories, errors and progress."""
