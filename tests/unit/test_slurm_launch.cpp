// How ringtrain checks a SLURM launch (collectives/mpi_context.h): srun's tasks without an
// MPI plug-in, or a world that is not the step's tasks, are one clear config error; mpirun's
// ranks (also inside an allocation) and processes SLURM did not start pass.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "collectives/mpi_context.h"
#include "core/error.h"

namespace ringtrain {
namespace {

SlurmLaunch srunTasks(long tasks, bool withPmi) {
  SlurmLaunch launch;
  launch.bySrun = true;
  launch.withPmi = withPmi;
  launch.tasks = tasks;
  launch.procId = 1;
  return launch;
}

TEST(SlurmLaunch, SrunWithoutAnMpiPluginIsRefusedBeforeMpiStarts) {
  try {
    checkSlurmLaunch(srunTasks(4, false), -1);
    FAIL() << "srun without --mpi was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.rank(), 1);
    EXPECT_NE(std::string(e.what()).find("without an MPI plug-in"), std::string::npos);
    EXPECT_NE(e.hint().find("srun --mpi=pmix"), std::string::npos);
  }
}

TEST(SlurmLaunch, AWorldThatIsNotTheStepsTasksIsRefused) {
  EXPECT_NO_THROW(checkSlurmLaunch(srunTasks(4, true), 4));
  EXPECT_NO_THROW(checkSlurmLaunch(srunTasks(4, true), -1));
  try {
    checkSlurmLaunch(srunTasks(4, true), 1);
    FAIL() << "a world of 1 in a step of 4 tasks was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("MPI sees 1 rank(s), but SLURM started 4 task(s)"),
              std::string::npos)
        << e.what();
  }
}

TEST(SlurmLaunch, MpirunsRanksAndProcessesOutsideSlurmPass) {
  SlurmLaunch launch;  // not started by srun
  EXPECT_NO_THROW(checkSlurmLaunch(launch, 3));
}

TEST(SlurmLaunch, TheEnvironmentTellsSrunsTasksFromMpirunsRanks) {
  setenv("SLURM_STEP_ID", "0", 1);
  setenv("SLURM_STEP_NUM_TASKS", "4", 1);
  setenv("SLURM_PROCID", "2", 1);
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMIX_RANK");
  unsetenv("PMI_RANK");
  unsetenv("PMI_FD");
  auto launch = slurmLaunchFromEnvironment();
  EXPECT_TRUE(launch.bySrun);
  EXPECT_FALSE(launch.withPmi);
  EXPECT_EQ(launch.tasks, 4);
  EXPECT_EQ(launch.procId, 2);
  setenv("PMIX_RANK", "2", 1);
  EXPECT_TRUE(slurmLaunchFromEnvironment().withPmi);
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);  // mpirun's rank inside an allocation
  EXPECT_FALSE(slurmLaunchFromEnvironment().bySrun);
  for (const char* name : {"SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "PMIX_RANK",
                           "OMPI_COMM_WORLD_SIZE"}) {
    unsetenv(name);
  }
}

}  // namespace
}  // namespace ringtrain
