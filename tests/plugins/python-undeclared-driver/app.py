"""A Python driver whose declaration the test empties (tests/recipes:
python_plugins_are_as_sandboxed_as_rust): refused at load, never run."""

import wit_world
from wit_world.exports.driver import DriverInfo, MachineState, SshDetails

from dmw_guest import fail


class Driver(wit_world.exports.Driver):
    def info(self):
        return DriverInfo(name="py-undeclared", description="declares nothing", provisions=True)

    def create_flags(self):
        return []

    def set_config(self, machine_name, flags):
        pass

    def pre_create_check(self):
        pass

    def create(self):
        fail("never run")

    def state(self):
        return MachineState.NONE

    def address(self):
        fail("never run")

    def ssh_endpoint(self):
        return SshDetails(address="", port=22, user="root", key_path=None)

    def engine_port(self):
        return 2376

    def start(self):
        pass

    def stop(self):
        pass

    def restart(self):
        pass

    def kill(self):
        pass

    def remove(self):
        pass
