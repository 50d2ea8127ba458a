// The slice of the Kubernetes API objects pod-gateway reads: a Pod (v1) and the watch
// stream's events. Only the fields the decisions use are typed; everything is optional
// because a watch can deliver partial objects and old API servers omit fields.

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
}

export interface Container {
  name: string;
  /** Only on init containers: "Always" makes it a native sidecar (Kubernetes 1.28+). */
  restartPolicy?: string;
}

export interface ContainerStateTerminated {
  exitCode?: number;
  reason?: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state?: ContainerState;
  lastState?: ContainerState;
  ready?: boolean;
  restartCount?: number;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: {
    containers?: Container[];
    initContainers?: Container[];
    /** Always (the API default), OnFailure or Never. */
    restartPolicy?: string;
  };
  status?: {
    phase?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** meta/v1 Status: the body of an API error and the object of a watch ERROR event. */
export interface Status {
  kind: "Status";
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export type WatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: Pod }
  /** Only metadata.resourceVersion is meaningful in a bookmark's object. */
  | { type: "BOOKMARK"; object: Pod }
  | { type: "ERROR"; object: Status };
