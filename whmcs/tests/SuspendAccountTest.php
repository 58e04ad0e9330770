<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;

/**
 * jetpack_SuspendAccount and jetpack_UnsuspendAccount: one request each for jetpack-worker
 * (which keeps or cancels the plan as the product's setting says), never refused for an
 * order detail (WHMCS must be able to suspend an overdue service), and the client keeps the
 * activation link the details field shows.
 */
final class SuspendAccountTest extends DatabaseTestCase
{
    public function testSuspendAndUnsuspendRecordRequestsAndLeaveTheLink(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $link = 'URL to Activate Jetpack: https://example.org/activate';
        $this->setValue($service, 'jetpack_provisioning_details', $link);

        $this->assertSame('success', jetpack_SuspendAccount(Whmcs::params($service)));
        $this->assertSame('success', jetpack_UnsuspendAccount(Whmcs::params($service)));

        $requests = $this->requests($service);
        $this->assertSame(array('suspend', 'unsuspend'), array_column($requests, 'action'));
        $this->assertSame($link, $this->details($service), 'the client keeps the link');
        $this->assertStringEndsWith(
            'suspend requested for jetpack-worker (request #' . $requests[0]->id . ')',
            $this->loggedActivity()[0]
        );
    }

    public function testASuspendIsNeverRefusedForAnOrderDetail(): void
    {
        $values = $this->validValues();
        $values['Site URL'] = 'not a site';
        $service = $this->service($this->product(), $values, array('status' => 'Active'));

        $this->assertStringStartsWith('JETPACK MODULE: ', jetpack_CreateAccount(Whmcs::params($service)));
        $this->assertSame('success', jetpack_SuspendAccount(Whmcs::params($service)));

        $this->assertSame(array('suspend'), array_column($this->requests($service), 'action'));
    }
}
