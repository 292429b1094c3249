"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class BrokenVideosError(Exception):
    """Bad input or configuration. The message names the file (or key) and the problem."""


class InputError(BrokenVideosError):
    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable, so it crosses Ray and process-pool boundaries intact
        return (type(self), (self.path, self.problem))
